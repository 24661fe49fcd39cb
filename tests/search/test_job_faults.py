"""Cluster runs and duplicate scans on the production shape (gunicorn, a Celery worker and beat, on
Redis): started while Redis is down, they are answered at once and done once it is back; their
messages lost with a flushed Redis, they are done all the same (tests/support/workers.py
FAST_RECOVERY: leases of seconds)."""

import pytest

from memories.services import api_key_create
from omi_memory.actors import Actor
from search.models import ClusterRun, DuplicateScan
from tests.support.api_client import call
from tests.support.memories import indexed_memory
from tests.support.processes import RedisServer, celery_beat, celery_worker, free_port, service_env, web_server
from tests.support.transcripts import HEALTH, MONEY
from tests.support.workers import BOUND_SECONDS, FAST_RECOVERY, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def statuses(runs: list[int], scans: list[int]) -> list[str]:
    return [ClusterRun.objects.get(id=i).status for i in runs] + [DuplicateScan.objects.get(id=i).status for i in scans]


def test_jobs_started_while_redis_is_down_or_lost_with_its_queue_are_all_done(tmp_path):
    import redis as redis_client

    key = api_key_create(name="job faults", actor=Actor.command())[1]
    for text in HEALTH + MONEY:  # indexed here, in-process
        indexed_memory("u-faults", text)
    redis = RedisServer(free_port(), tmp_path)  # the test's own: stopping it disturbs no other test
    env = {**service_env(redis.url), **FAST_RECOVERY}
    logs = [tmp_path / "worker.log"]
    with redis, web_server(env, tmp_path / "web.log") as base:
        redis.stop()
        down = [
            call(base, key, "POST", "/clusters/runs", {"uid": "u-faults", "k": 2}),
            call(base, key, "POST", "/duplicates/scans", {"uid": "u-faults"}),
        ]
        assert [a.status for a in down] == [202, 202], [a.json for a in down]
        assert max(a.seconds for a in down) < 3, [round(a.seconds, 2) for a in down]
        redis.start()  # back, and empty
        lost = [
            call(base, key, "POST", "/clusters/runs", {"uid": "u-faults", "k": 2}),
            call(base, key, "POST", "/duplicates/scans", {"uid": "u-faults"}),
        ]
        assert [a.status for a in lost] == [202, 202], [a.json for a in lost]
        redis_client.Redis.from_url(redis.url).flushdb()  # their messages gone before any worker took them
        runs, scans = [down[0].json["id"], lost[0].json["id"]], [down[1].json["id"], lost[1].json["id"]]
        assert statuses(runs, scans) == ["queued"] * 4

        with celery_beat(env, tmp_path / "beat.log", tmp_path / "beat"), celery_worker(env, logs[0]):
            done = lambda: statuses(runs, scans) == ["done"] * 4  # noqa: E731
            wait_for(done, BOUND_SECONDS, "every job done", logs)

    assert [ClusterRun.objects.get(id=i).k for i in runs] == [2, 2]
    assert [DuplicateScan.objects.get(id=i).counts["memories"] for i in scans] == [8, 8]
    assert [ClusterRun.objects.get(id=i).attempts for i in runs] == [1, 1]  # each run once
