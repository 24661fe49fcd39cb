"""Nothing stuck: leases, the heartbeat that keeps them, the sweeper that sends again what a lost
message or a dead worker left, and a broker that is down, in-process (the real processes and
faults are in test_faults.py)."""

import time
from datetime import timedelta
from uuid import uuid4

import pytest
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

import memories.processing as processing
from memories import services, tasks
from memories.models import LocalVector, Memory, MemoryVector
from memories.processing import memory_process, memory_process_many
from memories.services import memory_create_many, memory_delete, memory_reprocess, pipeline_sweep
from omi_memory.breaker import BROKER
from search.services import search_memories
from tests.support.actors import COMMAND
from tests.support.agreement import assert_vectors_agree_with_database
from tests.support.parts import FlakyExtractor
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST, STANDUP, long_transcript

pytestmark = pytest.mark.django_db


def stored(transcript: str = BUDGET, uid: str = "alice") -> Memory:
    """A memory stored `queued` whose message never reaches a worker (lost with the broker)."""
    return memory_create_many(items=[{"uid": uid, "transcript": transcript}], enqueue=False)[0]


def lease_passes(memory: Memory) -> None:
    Memory.objects.filter(id=memory.id).update(lease_until=timezone.now() - timedelta(seconds=1))


def sweep() -> services.Sweep:
    with committed():  # what the sweep sends runs in-process when it commits
        return pipeline_sweep()


class Broker:
    """The task broker, as the services see it: `down()` makes every task sent fail as with Redis
    down (`calls` counts the attempts to send one), `back_up()` ends that."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.calls = []

    def down(self) -> None:
        def refuse(*args, **kwargs):
            self.calls.append(args)
            raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        for task in (tasks.process_memory, tasks.process_memories, tasks.delete_memory_vectors):
            self.monkeypatch.setattr(task, "apply_async", refuse)

    def back_up(self) -> None:
        self.monkeypatch.undo()
        BROKER.reset()  # as when BROKER_RETRY_AFTER_SECONDS have passed


@pytest.fixture
def broker(monkeypatch) -> Broker:
    return Broker(monkeypatch)


def test_beat_sends_the_sweep_and_redis_hands_a_message_to_another_worker_only_after_the_longest_retry_countdown():
    from omi_memory.celery import app

    assert app.conf.beat_schedule["sweep"]["task"] == tasks.sweep.name
    assert app.conf.beat_schedule["sweep"]["schedule"] == settings.PIPELINE_SWEEP_SECONDS
    longest_countdown = tasks.process_memories.retry_backoff_max
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility >= longest_countdown + 10 * settings.PIPELINE_LEASE_SECONDS


def test_a_queued_memory_whose_message_was_lost_is_processed_by_the_first_sweep_after_its_lease():
    memory = stored()

    assert sweep().queued == []  # its message may still come: the lease holds
    lease_passes(memory)
    assert sweep().queued == [memory.id]

    memory.refresh_from_db()
    assert memory.status == Memory.Status.INDEXED and memory.searchable and memory.lease_until is None
    assert_vectors_agree_with_database()


def test_a_dead_workers_memory_is_left_while_its_lease_holds_then_queued_again_and_indexed():
    memory = stored()
    claimed = Memory.objects.filter(id=memory.id)
    claimed.update(
        status="processing", claim_token=uuid4(), attempts=1, lease_until=timezone.now() + timedelta(minutes=1)
    )

    assert sweep().queued == []  # a live worker renews its lease
    lease_passes(memory)  # no heartbeat any more: the worker is gone
    assert sweep().queued == [memory.id]

    memory.refresh_from_db()
    assert memory.status == Memory.Status.INDEXED and memory.attempts == 2
    assert_vectors_agree_with_database()


def test_a_memory_whose_worker_is_lost_every_time_ends_failed_with_the_reason(settings):
    settings.PIPELINE_MAX_RETRIES = 2
    memory = stored()
    Memory.objects.filter(id=memory.id).update(status="processing", claim_token=uuid4(), attempts=3)
    lease_passes(memory)

    done = sweep()

    assert done.failed == [memory.id] and done.queued == []
    memory.refresh_from_db()
    assert memory.status == Memory.Status.FAILED and memory.lease_until is None
    assert "worker was lost" in memory.failure_reason and "3 times" in memory.failure_reason


def test_a_deleted_memory_whose_vectors_were_left_behind_is_swept_clean(remember, broker):
    memory = remember("alice", long_transcript(30))
    assert LocalVector.objects.filter(memory_id=str(memory.id)).count() > 1
    broker.down()

    with committed():
        memory_delete(memory=memory, actor=COMMAND)  # its task cannot be sent

    assert LocalVector.objects.filter(memory_id=str(memory.id)).exists()
    broker.back_up()
    assert sweep().deleted == [memory.id]
    assert not LocalVector.objects.filter(memory_id=str(memory.id)).exists()
    assert not MemoryVector.objects.filter(memory_id=memory.id).exists()
    assert Memory.objects.get(id=memory.id).lease_until is None  # nothing left to do: no more sweeps
    assert sweep().deleted == []


def test_a_late_original_cannot_finish_a_memory_another_claim_took_over(monkeypatch):
    memory = stored(long_transcript(20))
    build = processing.memory_vectors_build_many
    outcomes = []

    def build_while_the_lease_passes_and_another_worker_takes_over(**kwargs):
        if not outcomes:  # the original, slowed down past its lease
            outcomes.append("taken over")
            lease_passes(memory)
            outcomes.append(memory_process(memory_id=memory.id))
        return build(**kwargs)

    monkeypatch.setattr(
        processing, "memory_vectors_build_many", build_while_the_lease_passes_and_another_worker_takes_over
    )

    assert memory_process(memory_id=memory.id) == "superseded"  # the original's finish is refused
    assert outcomes == ["taken over", "indexed"]
    memory.refresh_from_db()
    assert memory.status == Memory.Status.INDEXED and memory.attempts == 2 and memory.claim_token is None
    assert_vectors_agree_with_database()  # both wrote the same ids: nothing twice, nothing left over


@pytest.mark.django_db(transaction=True)  # the heartbeat renews the lease from a thread of its own: real commits
def test_a_batch_that_outlasts_its_lease_keeps_it_alive_and_no_sweep_takes_it_over(settings, monkeypatch):
    settings.PIPELINE_LEASE_SECONDS = 1  # renewed every quarter second
    first, second = memory_create_many(
        items=[{"uid": "alice", "transcript": BUDGET}, {"uid": "alice", "transcript": STANDUP}], enqueue=False
    )
    build = processing.memory_vectors_build_many
    seen = {}

    def slow_build(**kwargs):
        time.sleep(2.5)  # more than twice the lease
        seen["lease left"] = min(m.lease_until for m in Memory.objects.filter(id__in=[first.id, second.id]))
        seen["now"] = timezone.now()
        seen["swept"] = pipeline_sweep().queued
        return build(**kwargs)

    monkeypatch.setattr(processing, "memory_vectors_build_many", slow_build)

    assert memory_process_many(memory_ids=[first.id, second.id]) == {first.id: "indexed", second.id: "indexed"}
    assert seen["lease left"] > seen["now"] and seen["swept"] == []
    assert {m.attempts for m in Memory.objects.filter(id__in=[first.id, second.id])} == {1}


def test_with_the_broker_down_create_delete_and_reprocess_answer_and_the_sweep_does_the_work_later(
    api, remember, broker
):
    kept = remember("alice", DENTIST)
    gone = remember("alice", long_transcript(30))
    broker.down()

    created = api.post("/memories", {"uid": "alice", "transcript": BUDGET})
    deleted = api.delete(f"/memories/{gone.id}")
    reprocessed = api.post(f"/memories/{kept.id}/reprocess")

    assert created.status_code == 201 and created.json()["status"] == "queued"
    assert deleted.status_code == 204 and api.get(f"/memories/{gone.id}").status_code == 404
    assert reprocessed.status_code == 202 and reprocessed.json()["status"] == "queued"
    assert len(broker.calls) == 1  # after one failure the broker is left alone for a while
    # Search answers, and finds the memory being reprocessed by its old vectors.
    hits = api.post("/search", {"uid": "alice", "query": "cracked crown"}).json()["results"]
    assert hits[0]["memory"]["id"] == kept.id and hits[0]["memory"]["searchable"]

    broker.back_up()
    done = sweep()

    assert sorted(done.queued) == sorted([created.json()["id"], kept.id]) and done.deleted == [gone.id]
    statuses = dict(Memory.objects.values_list("id", "status"))
    assert statuses == {kept.id: "indexed", gone.id: "deleted", created.json()["id"]: "indexed"}
    assert Memory.objects.get(id=kept.id).indexed_at > kept.indexed_at  # reprocessed, once
    assert_vectors_agree_with_database()
    assert sweep() == services.Sweep()  # nothing left


def test_a_memory_being_reprocessed_is_found_by_every_strategy_until_a_failure_takes_it_out(remember, settings):
    memory = remember("alice", DENTIST)
    memory_reprocess(memory=memory, actor=COMMAND)  # queued again; its task has not run

    memory.refresh_from_db()
    assert memory.status == Memory.Status.QUEUED and memory.searchable
    for strategy in ("semantic", "time_weighted", "multi_query", "hybrid"):
        hits = search_memories(uid="alice", queries=["cracked crown"], strategy=strategy, log=False).hits
        assert [h.memory.id for h in hits] == [memory.id], strategy

    settings.EXTRACTOR = "tests.support.parts.FlakyExtractor"
    FlakyExtractor.reset(failures=1, permanent=True)
    assert memory_process(memory_id=memory.id) == "failed"

    assert not Memory.objects.get(id=memory.id).searchable
    assert search_memories(uid="alice", queries=["cracked crown"], strategy="hybrid", log=False).hits == []


def test_a_create_that_loses_the_race_for_its_external_id_is_a_409_naming_the_winner(api, monkeypatch):
    first = api.post("/memories", {"uid": "alice", "transcript": BUDGET, "external_id": "x-1"}).json()
    check = services._taken_external_ids
    checks = []

    def checked_before_the_other_committed(keys):
        checks.append(keys)
        return [] if len(checks) == 1 else check(keys)

    monkeypatch.setattr(services, "_taken_external_ids", checked_before_the_other_committed)

    again = api.post("/memories", {"uid": "alice", "transcript": STANDUP, "external_id": "x-1"})

    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "duplicate_external_id"
    assert error["details"] == [{"uid": "alice", "external_id": "x-1", "id": first["id"]}]
    assert Memory.objects.count() == 1
