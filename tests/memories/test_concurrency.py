"""Concurrency edges, on the production shape (gunicorn with two processes of four threads, Redis,
Celery workers): twenty creates of one external_id at once, single and batch; two reprocesses at
once; a delete while the memory is being processed. One memory each time, the others told so by a
409 naming it, no 500, and the store agreeing with the database."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from memories.models import LocalVector, Memory, MemoryVector
from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.agreement import assert_vectors_agree_with_database
from tests.support.api_client import call
from tests.support.processes import celery_worker, redis_url_or_skip, service_env, web_server
from tests.support.transcripts import BUDGET, DENTIST, STANDUP
from tests.support.workers import all_indexed, nothing_pending, statuses, wait_for

# Real commits: the server and the workers are other processes.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

CLIENTS = 20


@pytest.fixture
def key() -> str:
    return api_key_create(name="concurrency", actor=Actor.command())[1]


def at_once(requests: list) -> list:
    """Send the requests (functions of no argument) together, each from a thread of its own."""
    start = threading.Barrier(len(requests))

    def send(request):
        start.wait()
        return request()

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def assert_one_created_and_the_rest_told_which(answers, uid: str, external_id: str) -> int:
    """Exactly one 201; every other answer a 409 duplicate_external_id naming the memory made."""
    created = [a for a in answers if a.status == 201]
    assert len(created) == 1, [(a.status, a.json) for a in answers]
    memory = created[0].json if "id" in created[0].json else created[0].json["items"][0]
    refused = [a for a in answers if a is not created[0]]
    assert {a.status for a in refused} == {409}, [(a.status, a.json) for a in refused]
    named = {"uid": uid, "external_id": external_id, "id": memory["id"]}
    for answer in refused:
        assert answer.json["error"]["code"] == "duplicate_external_id"
        assert answer.json["error"]["details"] == [named]
    return memory["id"]


def test_twenty_creates_of_one_external_id_at_once_make_one_memory_and_tell_the_others_which(tmp_path, key):
    env = service_env(redis_url_or_skip())  # no worker: the memories wait, queued
    with web_server(env, tmp_path / "web.log", workers=2) as base:
        body = {"uid": "alice", "transcript": BUDGET, "external_id": "call-42"}
        answers = at_once([lambda: call(base, key, "POST", "/memories", body)] * CLIENTS)

    memory_id = assert_one_created_and_the_rest_told_which(answers, "alice", "call-42")
    assert list(Memory.objects.values_list("id", flat=True)) == [memory_id]


def test_twenty_batches_sharing_one_external_id_at_once_store_one_batch_whole_and_nothing_of_the_others(tmp_path, key):
    env = service_env(redis_url_or_skip())
    with web_server(env, tmp_path / "web.log", workers=2) as base:

        def batch(i: int):
            shared = {"uid": "alice", "transcript": BUDGET, "external_id": "call-42"}
            own = {"uid": "alice", "transcript": STANDUP, "external_id": f"own-{i}"}
            return lambda: call(base, key, "POST", "/memories/batch", {"memories": [shared, own]})

        answers = at_once([batch(i) for i in range(CLIENTS)])

    memory_id = assert_one_created_and_the_rest_told_which(answers, "alice", "call-42")
    winner = next(a for a in answers if a.status == 201).json["items"][1]["external_id"]
    stored = dict(Memory.objects.values_list("external_id", "id"))
    assert stored == {"call-42": memory_id, winner: stored[winner]}  # all or none: the losers' own are not kept


def test_two_reprocesses_at_once_end_indexed_once_and_the_memory_is_found_throughout(tmp_path, key):
    env = service_env(redis_url_or_skip())
    logs = [tmp_path / "worker.log"]
    with web_server(env, tmp_path / "web.log", workers=2) as base, celery_worker(env, logs[0], concurrency=2):
        memory_id = call(base, key, "POST", "/memories", {"uid": "alice", "transcript": DENTIST}).json["id"]
        wait_for(all_indexed([memory_id]), 120, "the memory indexed", logs)
        search = {"uid": "alice", "query": "cracked crown"}

        answers = at_once(
            [lambda: call(base, key, "POST", f"/memories/{memory_id}/reprocess")] * 2
            + [lambda: call(base, key, "POST", "/search", search)] * 2
        )
        reprocessed, searched = answers[:2], answers[2:]
        while not nothing_pending([memory_id])():  # searched while it is reprocessed
            searched.append(call(base, key, "POST", "/search", search))
        searched.append(call(base, key, "POST", "/search", search))

    assert {a.status for a in reprocessed} <= {202, 409} and 202 in {a.status for a in reprocessed}
    for answer in reprocessed:
        if answer.status == 409:  # the other one's worker had it already
            assert "cannot be reprocessed now" in answer.json["error"]["message"]
    for answer in searched:
        assert answer.status == 200 and memory_id in [hit["memory"]["id"] for hit in answer.json["results"]]
    assert statuses([memory_id]) == {memory_id: "indexed"}
    assert Memory.objects.get(id=memory_id).attempts == 1  # each reprocess starts again from 0: one claim each
    assert_vectors_agree_with_database()


def test_a_memory_deleted_while_a_worker_processes_it_is_gone_with_every_vector(tmp_path, key):
    env = {
        **service_env(redis_url_or_skip()),
        "EXTRACTOR": "tests.support.parts.SlowExtractor",
        "SLOW_EXTRACT_SECONDS": "3",
    }
    logs = [tmp_path / "worker.log"]
    with web_server(env, tmp_path / "web.log") as base, celery_worker(env, logs[0], concurrency=2):
        memory = call(base, key, "POST", "/memories", {"uid": "alice", "transcript": DENTIST}).json
        wait_for(lambda: statuses([memory["id"]]) == {memory["id"]: "processing"}, 120, "the worker on it", logs)

        deleted = call(base, key, "DELETE", f"/memories/{memory['id']}")

        assert deleted.status == 204
        assert call(base, key, "GET", f"/memories/{memory['id']}").status == 404
        finished = f"memory {memory['id']}: deleted or re-claimed while processing"
        wait_for(lambda: finished in logs[0].read_text(), 60, "the worker done with it", logs)
        wait_for(nothing_pending([memory["id"]]), 60, "its vectors removed", logs)

    assert statuses([memory["id"]]) == {memory["id"]: "deleted"}
    assert not LocalVector.objects.filter(memory_id=str(memory["id"])).exists()
    assert not MemoryVector.objects.filter(memory_id=memory["id"]).exists()
    assert_vectors_agree_with_database()
