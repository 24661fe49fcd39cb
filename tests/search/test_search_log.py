"""Search logs written after the answer (search/search_log.py), on committed rows: the writer's
connection sees only those."""

import os
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from memories.models import ApiKey
from search import search_log
from search.models import RelevanceFeedback, SearchLog
from search.search_log import reserve_id
from search.selectors import search_log_get
from tests.support.processes import ROOT, database_url_for_subprocess
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def background(settings):
    settings.SEARCH_LOG_BACKGROUND = True
    yield
    search_log.writer.flush()


def test_a_search_logged_after_the_answer_has_its_fields_and_can_be_judged_at_once(api, remember, background):
    dentist = remember("alice", DENTIST)
    remember("alice", BUDGET)

    answer = api.post("/search", {"uid": "alice", "query": "tooth crown cost", "k": 2}).json()
    judged = api.post("/search/feedback", {"search_id": answer["search_id"], "memory_id": dentist.id, "relevant": True})

    assert judged.status_code == 201, judged.content
    log = SearchLog.objects.get(id=answer["search_id"])
    assert (log.uid, log.queries, log.strategy, log.api_key) == (
        "alice",
        ["tooth crown cost"],
        "hybrid",
        ApiKey.objects.get(name="all users"),
    )
    assert [r["memory_id"] for r in log.results] == [h["memory"]["id"] for h in answer["results"]]
    assert log.params["k"] == 2 and log.latency_ms > 0
    assert RelevanceFeedback.objects.get(search=log).relevant is True


def test_feedback_waits_for_a_log_still_on_its_way_but_not_for_an_unknown_or_another_users_search(background):
    search_id = reserve_id()
    late = SearchLog(id=search_id, uid="alice", queries=["crown"], strategy="hybrid", latency_ms=1.0)

    def write_late():  # another process, slow
        SearchLog.objects.bulk_create([late])
        connection.close()

    threading.Timer(0.3, write_late).start()

    assert search_log_get(search_id=search_id, uid="alice").queries == ["crown"]

    started = time.monotonic()
    with pytest.raises(Exception, match="not found"):
        search_log_get(search_id=search_id, uid="bob")
    with pytest.raises(Exception, match="not found"):
        search_log_get(search_id=search_id + 10**6)
    assert time.monotonic() - started < 0.5


def test_logs_queued_when_a_process_ends_normally_are_written(background):
    """A process that logs searches and exits at once (its writer thread had no time): atexit."""
    script = (
        "import django; django.setup();"
        "from search.models import SearchLog; from search.search_log import search_log_write;"
        "ids = [search_log_write(SearchLog(uid='alice', queries=[f'q{i}'], strategy='semantic', latency_ms=1.0))"
        " for i in range(50)];"
        "print(min(ids), max(ids))"
    )
    env = {"DATABASE_URL": database_url_for_subprocess(), "SEARCH_LOG_BACKGROUND": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "omi_memory.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    first, last = map(int, done.stdout.split())
    assert SearchLog.objects.filter(id__range=(first, last), uid="alice").count() == 50
