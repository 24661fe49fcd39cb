"""Faults, on the production shape: gunicorn, Celery workers (a prefork pool of two) and beat, on
Redis and the test database. A worker killed with SIGKILL mid-batch, Redis flushed, Redis stopped
and started, PostgreSQL's connections killed: each test ends with every memory where it should be
(indexed, or deleted with its vectors gone) within a bound, the store and the database agreeing,
and no memory indexed twice.

Leases and sweeps are seconds here (tests/support/workers.py FAST_RECOVERY), so each fault is
recovered from in seconds; by default a dead worker's memories are processed again within 3 minutes.
"""

import time

import pytest
from django.db import connection

from memories.models import Memory
from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.agreement import assert_vectors_agree_with_database
from tests.support.api_client import call
from tests.support.processes import (
    RedisServer,
    celery_beat,
    celery_worker,
    free_port,
    kill,
    redis_url_or_skip,
    service_env,
    web_server,
)
from tests.support.workers import (
    BOUND_SECONDS,
    FAST_RECOVERY,
    all_indexed,
    created_ids,
    indexings,
    nothing_pending,
    statuses,
    transcripts,
    wait_for,
)

# Real commits: the server and the workers are other processes.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def key() -> str:
    return api_key_create(name="faults", actor=Actor.command())[1]


def test_a_worker_killed_mid_batch_loses_nothing_and_indexes_nothing_twice(tmp_path, key):
    env = {**service_env(redis_url_or_skip()), **FAST_RECOVERY}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    with web_server(env, tmp_path / "web.log") as base, celery_beat(env, tmp_path / "beat.log", tmp_path / "beat"):
        ids = []
        for batch in range(4):
            ids += created_ids(call(base, key, "POST", "/memories/batch", {"memories": transcripts(10, f"{batch}")}))

        with celery_worker(env, logs[0], concurrency=2) as worker:
            at_work = lambda: {"indexed", "processing"} <= set(statuses(ids).values())  # noqa: E731
            wait_for(at_work, 120, "a batch done and another at work", logs)
            kill(worker)  # kill -9: the worker and its pool, with their messages unacknowledged
        stuck = [memory_id for memory_id, status in statuses(ids).items() if status == "processing"]
        assert stuck, "the kill came after the work was done"

        with celery_worker(env, logs[1], concurrency=2):
            wait_for(all_indexed(ids), BOUND_SECONDS, "every memory indexed after the kill", logs)

    assert_vectors_agree_with_database()
    assert indexings(logs) == {memory_id: 1 for memory_id in ids}
    assert all(m.attempts >= 2 for m in Memory.objects.filter(id__in=stuck))  # the killed claim counts


def test_memories_whose_messages_a_flushed_redis_lost_are_all_done(tmp_path, key):
    import redis

    url = redis_url_or_skip()
    env = {**service_env(url), **FAST_RECOVERY, "SLOW_EXTRACT_SECONDS": "0"}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    with web_server(env, tmp_path / "web.log") as base, celery_beat(env, tmp_path / "beat.log", tmp_path / "beat"):
        with celery_worker(env, logs[0], concurrency=2):
            first = created_ids(call(base, key, "POST", "/memories/batch", {"memories": transcripts(3, "a")}))
            wait_for(all_indexed(first), 120, "the first memories indexed", logs)
        # No worker: what is sent now waits in Redis, and is lost with it.
        for memory_id in first[:2]:
            assert call(base, key, "DELETE", f"/memories/{memory_id}").status == 204
        later = created_ids(call(base, key, "POST", "/memories/batch", {"memories": transcripts(10, "b")}))
        later += [call(base, key, "POST", "/memories", item).json["id"] for item in transcripts(5, "c")]
        redis.Redis.from_url(url).flushdb()

        with celery_worker(env, logs[1], concurrency=2):
            wait_for(nothing_pending(first + later), BOUND_SECONDS, "all done after the flush", logs)

    deleted = {memory_id: "deleted" for memory_id in first[:2]}
    assert statuses(first + later) == {**deleted, **{memory_id: "indexed" for memory_id in first[2:] + later}}
    assert_vectors_agree_with_database()
    assert indexings(logs) == {memory_id: 1 for memory_id in first + later}


def test_with_redis_stopped_the_api_answers_at_once_and_the_work_is_done_once_it_is_back(tmp_path, key):
    redis = RedisServer(free_port(), tmp_path)  # the test's own: stopping it disturbs no other test
    env = {**service_env(redis.url), **FAST_RECOVERY, "SLOW_EXTRACT_SECONDS": "0"}
    logs = [tmp_path / "worker.log"]
    with (
        redis,
        web_server(env, tmp_path / "web.log") as base,
        celery_beat(env, tmp_path / "beat.log", tmp_path / "beat"),
        # Celery (5.7) may stop a worker when Redis goes away mid-acknowledgement: it is restarted.
        celery_worker(env, logs[0], concurrency=2, supervised=True),
    ):
        kept, gone = created_ids(call(base, key, "POST", "/memories/batch", {"memories": transcripts(2, "a")}))
        wait_for(all_indexed([kept, gone]), 120, "the first memories indexed", logs)
        indexed_at = Memory.objects.get(id=kept).indexed_at

        redis.stop()  # every answer still comes at once, as if it were up
        answers = [
            call(base, key, "POST", "/memories", transcripts(1, "b")[0]),
            call(base, key, "POST", "/memories/batch", {"memories": transcripts(3, "c")}),
            call(base, key, "DELETE", f"/memories/{gone}"),
            call(base, key, "POST", f"/memories/{kept}/reprocess"),
            call(base, key, "POST", "/search", {"uid": "alice", "query": "cracked crown dentist"}),
            call(base, key, "POST", "/search", {"uid": "alice", "query": "the crown", "strategy": "semantic"}),
        ]
        assert [a.status for a in answers] == [201, 201, 204, 202, 200, 200], [a.json for a in answers]
        assert max(a.seconds for a in answers) < 3, [round(a.seconds, 2) for a in answers]
        for search in answers[4:]:  # the memory being reprocessed is found by its old vectors
            assert kept in [hit["memory"]["id"] for hit in search.json["results"]]
        created = [answers[0].json["id"], *created_ids(answers[1])]
        assert set(statuses(created + [kept]).values()) == {"queued"}

        redis.start()  # back, and empty
        wait_for(nothing_pending(created + [kept, gone]), BOUND_SECONDS, "all done once Redis is back", logs)

    assert statuses(created + [kept, gone]) == {**{i: "indexed" for i in created + [kept]}, gone: "deleted"}
    assert Memory.objects.get(id=kept).indexed_at > indexed_at  # reprocessed
    assert_vectors_agree_with_database()
    assert indexings(logs) == {**{i: 1 for i in created + [gone]}, kept: 2}


def test_postgresql_connections_killed_mid_batch_and_every_memory_still_finishes(tmp_path, key):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    env = {**service_env(redis_url_or_skip()), **FAST_RECOVERY}
    logs = [tmp_path / "worker.log"]
    with (
        web_server(env, tmp_path / "web.log") as base,
        celery_beat(env, tmp_path / "beat.log", tmp_path / "beat"),
        celery_worker(env, logs[0], concurrency=2),
    ):
        ids = []
        for batch in range(2):
            ids += created_ids(call(base, key, "POST", "/memories/batch", {"memories": transcripts(10, f"{batch}")}))
        wait_for(lambda: "processing" in statuses(ids).values(), 120, "a batch at work", logs)
        killed = 0
        for _ in range(3):  # every connection but this test's: the web's, the workers', their heartbeats'
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                killed += cursor.fetchone()[0]
            time.sleep(1.5)
        assert killed
        assert call(base, key, "GET", "/memories?limit=1").status == 200  # the web reconnects by itself
        wait_for(all_indexed(ids), BOUND_SECONDS, "every memory indexed after the kills", logs)

    assert_vectors_agree_with_database()
    assert indexings(logs) == {memory_id: 1 for memory_id in ids}
