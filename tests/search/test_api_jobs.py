"""Jobs over the API on the production shape: a clustering and a duplicate scan answer 202 with a
status URL that says `queued` while no worker is there, and `done` with the result once a real
Celery worker on Redis has run them."""

import time

import pytest

from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.api_client import call
from tests.support.memories import indexed_memory
from tests.support.processes import celery_worker, redis_url_or_skip, service_env, web_server
from tests.support.transcripts import HEALTH, MONEY

# Real commits: gunicorn and the worker, other processes, read the rows made here.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_jobs_answer_202_and_their_status_urls_go_from_queued_to_done_by_a_real_worker(tmp_path):
    for text in HEALTH[:3] + MONEY[:3]:
        indexed_memory("u-jobs", text)
    env = service_env(redis_url_or_skip())
    key = api_key_create(name="jobs", uid="u-jobs", actor=Actor.command())[1]

    with web_server(env, tmp_path / "web.log") as base:
        started = {
            "clusters": call(base, key, "POST", "/clusters/runs", {"uid": "u-jobs", "k": 2}),
            "scan": call(base, key, "POST", "/duplicates/scans", {}),
        }
        urls = {name: answer.headers["Location"].removeprefix("/api/v1") for name, answer in started.items()}

        assert [answer.status for answer in started.values()] == [202, 202]
        assert [answer.json["status_url"] for answer in started.values()] == [f"/api/v1{url}" for url in urls.values()]
        waiting = {name: call(base, key, "GET", url).json["status"] for name, url in urls.items()}
        assert waiting == {"clusters": "queued", "scan": "queued"}  # no worker yet: the tasks wait in Redis

        with celery_worker(env, tmp_path / "worker.log"):
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                now = {name: call(base, key, "GET", url).json for name, url in urls.items()}
                if all(job["status"] in ("done", "failed") for job in now.values()):
                    break
                time.sleep(0.3)

    log = (tmp_path / "worker.log").read_text()[-3000:]
    assert now["clusters"]["status"] == "done" and now["scan"]["status"] == "done", (now, log)
    assert now["clusters"]["k"] == 2 and sum(c["size"] for c in now["clusters"]["clusters"]) == 6
    assert now["scan"]["uid"] == "u-jobs" and now["scan"]["counts"]["memories"] == 6
