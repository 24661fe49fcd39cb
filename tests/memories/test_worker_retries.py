"""The retry policy in a real Celery worker on Redis: Celery's autoretry with backoff, bounded,
then a recorded failure; tasks found by their fixed names."""

import time

import pytest
from celery import Celery

from memories.models import Memory
from memories.services import memory_create_many
from tests.support.processes import celery_worker, redis_url_or_skip, service_env
from tests.support.transcripts import BUDGET, DENTIST

# A real worker (another process) must see the rows: they are committed, not rolled back.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_until_done(ids: list[int], seconds: float = 120) -> dict[int, Memory]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        memories = Memory.objects.in_bulk(ids)
        if all(m.status in ("indexed", "failed") for m in memories.values()):
            return memories
        time.sleep(0.2)
    return Memory.objects.in_bulk(ids)


def test_a_worker_retries_transient_failures_with_backoff_then_records_the_failure(tmp_path):
    env = {
        **service_env(redis_url_or_skip()),
        "EXTRACTOR": "tests.support.parts.TranscriptFlakyExtractor",
        "PIPELINE_MAX_RETRIES": "3",
        "PIPELINE_RETRY_BACKOFF_SECONDS": "1",
    }
    passing, lasting = memory_create_many(
        items=[
            {"uid": "alice", "transcript": f"{DENTIST}\nAlice: [fails 2 times]"},
            {"uid": "alice", "transcript": f"{BUDGET}\nBen: [always fails]"},
        ],
        enqueue=False,
    )
    # Queued by name alone, as by a deploy that came before this code: the names must not move.
    sender = Celery(broker=env["REDIS_URL"])
    sender.send_task("memories.tasks.process_memory", args=[passing.id])
    sender.send_task("memories.tasks.process_memories", args=[[lasting.id]])

    with celery_worker(env, tmp_path / "worker.log"):
        done = wait_until_done([passing.id, lasting.id])

    log = (tmp_path / "worker.log").read_text()
    assert done[passing.id].status == "indexed", log[-3000:]
    assert done[passing.id].attempts == 3  # two transient failures, then it worked
    assert done[lasting.id].status == "failed", log[-3000:]
    assert done[lasting.id].attempts == 4  # the first try and PIPELINE_MAX_RETRIES retries, no more
    assert "extractor unavailable" in done[lasting.id].failure_reason
    assert "Retry in" in log  # Celery scheduled the retries (with a countdown), not the task itself
