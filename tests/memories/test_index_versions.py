"""Index versions: built beside the live one, written to twice while built, switched, rolled back, dropped."""

import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection

from memories.index_versions import index_version_activate, index_version_start
from memories.models import AuditEvent, LocalVector, Memory, VectorIndex
from memories.parts.vectorstores import ModelMismatch, get_vector_store
from omi_memory.actors import Actor
from omi_memory.errors import Conflict
from search.models import SearchLog
from search.services import search_memories
from tests.support.processes import database_url_for_subprocess
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP

DIMS = 32  # the new version's: another dimension than the live one's 384 (and the fake's default)


def vector_sizes(namespace: str, memory: Memory | None = None) -> set[int]:
    rows = LocalVector.objects.filter(namespace=namespace)
    if memory is not None:
        rows = rows.filter(memory_id=str(memory.id))
    return {len(bytes(values)) // 4 for values in rows.values_list("values", flat=True)}


def memories_in(namespace: str) -> set[int]:
    return {int(m) for m in LocalVector.objects.filter(namespace=namespace).values_list("memory_id", flat=True)}


def build(*options: str) -> str:
    out = io.StringIO()
    call_command("index_build", "--embedder", "openai", "--dimensions", str(DIMS), *options, stdout=out)
    return out.getvalue()


@pytest.fixture
def indexed(api, fake_openai):
    """Three memories of alice and one of ben, indexed by the local model in namespace ns1."""
    for uid, transcript in (("alice", DENTIST), ("alice", BUDGET), ("alice", STANDUP), ("ben", RECITAL)):
        assert api.post("/memories", {"uid": uid, "transcript": transcript}).status_code == 201
    assert set(Memory.objects.values_list("status", flat=True)) == {"indexed"}
    return api


@pytest.mark.django_db
def test_a_build_fills_a_new_version_while_searches_read_the_live_one(indexed, fake_openai):
    output = build("--batch-size", "2")

    live, new = VectorIndex.objects.order_by("id")
    assert (live.state, live.model, live.dim) == ("active", "all-MiniLM-L6-v2", 384)
    assert (new.state, new.dim, new.memories_done, new.memories_total) == ("ready", DIMS, 4, 4)
    assert f"{new.name} is ready" in output
    assert memories_in(new.namespace) == set(Memory.objects.values_list("id", flat=True))
    assert vector_sizes(new.namespace) == {DIMS} and vector_sizes("ns1") == {384}

    live_hits = indexed.post("/search", {"uid": "alice", "query": "dentist crown"}).json()["results"]
    assert live_hits and live_hits[0]["memory"]["category"] == "health"
    assert SearchLog.objects.latest("id").params["index_version"] == live.name
    named = search_memories(uid="alice", queries=["dentist crown"], index_version=new.name)
    assert named.hits and named.hits[0].memory.category == "health"
    assert SearchLog.objects.latest("id").params["index_version"] == new.name
    assert AuditEvent.objects.filter(action="index.build", target_ids=[new.name]).exists()


@pytest.mark.django_db
def test_new_memories_and_deletes_are_written_to_both_versions_during_a_build(indexed, fake_openai):
    version, resumed = index_version_start(
        embedder="openai", dimensions=DIMS, vector_store="local", host="", actor=Actor.command()
    )
    assert version.state == "building" and not resumed

    created = indexed.post("/memories", {"uid": "alice", "transcript": GARDEN}).json()
    memory = Memory.objects.get(id=created["id"])
    assert memory.status == "indexed"
    assert vector_sizes("ns1", memory) == {384} and vector_sizes(version.namespace, memory) == {DIMS}

    build()  # the same options: the build under way is resumed, and ends with every memory
    assert memories_in(version.namespace) == set(Memory.objects.values_list("id", flat=True))

    assert indexed.delete(f"/memories/{memory.id}").status_code in (200, 204)
    assert memory.id not in memories_in("ns1") and memory.id not in memories_in(version.namespace)


@pytest.mark.django_db
def test_activating_a_version_switches_searches_and_previous_rolls_back(indexed, fake_openai):
    build()
    live, new = VectorIndex.objects.order_by("id")

    call_command("index_activate", new.name, stdout=io.StringIO())
    requests_before = len(fake_openai.requests)
    hits = indexed.post("/search", {"uid": "alice", "query": "dentist crown"}).json()["results"]
    assert hits and hits[0]["memory"]["category"] == "health"
    assert SearchLog.objects.latest("id").params["index_version"] == new.name
    assert len(fake_openai.requests) > requests_before  # the query was embedded by the new version's model
    assert get_vector_store().identity == new.store
    # a memory made after the switch is written to the retired version too, ready for a rollback
    created = indexed.post("/memories", {"uid": "alice", "transcript": GARDEN}).json()
    assert vector_sizes("ns1", Memory.objects.get(id=created["id"])) == {384}

    call_command("index_activate", "--previous", stdout=io.StringIO())
    live.refresh_from_db()
    new.refresh_from_db()
    assert (live.state, new.state) == ("active", "retired")
    assert get_vector_store().identity == live.store
    hits = indexed.post("/search", {"uid": "alice", "query": "vegetable garden raised beds"}).json()["results"]
    assert hits and hits[0]["memory"]["id"] == created["id"]
    assert AuditEvent.objects.filter(action="index.activate").count() == 2


@pytest.mark.django_db
def test_the_guard_refuses_a_query_of_another_model_than_the_active_versions(indexed, fake_openai):
    build()
    new = VectorIndex.objects.latest("id")
    call_command("index_activate", new.name, stdout=io.StringIO())

    with pytest.raises(ModelMismatch, match="all-MiniLM-L6-v2"):
        get_vector_store().check_model("all-MiniLM-L6-v2", 384)
    hits = indexed.post("/search", {"uid": "ben", "query": "piano recital"}).json()["results"]
    assert hits and hits[0]["memory"]["uid"] == "ben"


@pytest.mark.django_db
def test_a_version_still_building_cannot_be_activated_and_the_active_cannot_be_dropped(indexed, fake_openai):
    version, _ = index_version_start(
        embedder="openai", dimensions=DIMS, vector_store="local", host="", actor=Actor.command()
    )
    with pytest.raises(CommandError, match="still being built"):
        call_command("index_activate", version.name)
    with pytest.raises(Conflict):
        search_memories(uid="alice", queries=["dentist"], index_version=version.name)
    live = VectorIndex.objects.get(state="active")
    with pytest.raises(CommandError, match="is active"):
        call_command("index_drop", live.name)
    assert LocalVector.objects.filter(namespace="ns1").exists()

    build()
    call_command("index_activate", version.name, stdout=io.StringIO())
    call_command("index_drop", live.name, stdout=io.StringIO())
    assert not LocalVector.objects.filter(namespace="ns1").exists()
    assert list(VectorIndex.objects.values_list("id", flat=True)) == [version.id]
    hits = indexed.post("/search", {"uid": "alice", "query": "dentist crown"}).json()["results"]
    assert hits and hits[0]["memory"]["category"] == "health"
    with pytest.raises(CommandError, match="no version was active before"):
        call_command("index_activate", "--previous")


@pytest.mark.django_db(transaction=True)
def test_searches_during_switches_never_fail_nor_come_back_empty(indexed, fake_openai, settings):
    build()
    live, new = VectorIndex.objects.order_by("id")
    settings.INDEX_VERSION_TTL = 0.0  # every search reads which version is active: the most switches seen
    dentist = Memory.objects.get(transcript=DENTIST).id
    recital = Memory.objects.get(transcript=RECITAL).id
    stop = threading.Event()
    failures: list[str] = []
    seen: set[str] = set()
    searches = [0]

    def search_until_stopped(uid: str, query: str, expected: int) -> None:
        try:
            while not stop.is_set():
                try:
                    result = search_memories(uid=uid, queries=[query], k=3)
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                searches[0] += 1
                seen.add(SearchLog.objects.get(id=result.search_id).params["index_version"])
                if not result.hits or result.hits[0].memory.id != expected:
                    failures.append(f"{query!r}: {[h.memory.id for h in result.hits]}")
        finally:
            close_old_connections()
            connection.close()

    threads = [
        threading.Thread(target=search_until_stopped, args=("alice", "dentist crown", dentist)),
        threading.Thread(target=search_until_stopped, args=("ben", "piano recital", recital)),
    ]
    for thread in threads:
        thread.start()
    try:
        for name in [new.name, live.name] * 3:
            time.sleep(0.3)
            index_version_activate(name=name, actor=Actor.command())
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert not failures, failures[:5]
    assert searches[0] >= 6 and seen == {live.name, new.name}


@pytest.mark.django_db(transaction=True)
def test_a_build_killed_for_real_continues_where_it_stopped(indexed, fake_openai, tmp_path):
    for transcript in (GARDEN, DENTIST.replace("Alice", "Maria"), BUDGET.replace("Ben", "Tom")):
        indexed.post("/memories", {"uid": "carmen", "transcript": transcript})
    total = Memory.objects.count()
    fake_openai.latency = 0.4  # each batch of one memory takes at least this long
    env = {
        "DATABASE_URL": database_url_for_subprocess(),
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "PATH": "/usr/bin:/bin",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": settings.OPENAI_BASE_URL,
        "OPENAI_MAX_RETRIES": "0",
    }
    command = [sys.executable, "manage.py", "index_build", "--embedder", "openai", "--dimensions", str(DIMS)]
    log = tmp_path / "build.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--batch-size", "1"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240  # the command's start-up is slow on a busy machine
        while time.monotonic() < deadline and process.poll() is None:
            row = VectorIndex.objects.filter(state="building").first()
            if row is not None and row.memories_done >= 2:
                break
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    killed = VectorIndex.objects.get(state="building")
    assert 2 <= killed.memories_done < total, log.read_text()[-3000:]

    fake_openai.latency = 0.0
    requests_before = len(fake_openai.requests)
    output = build("--batch-size", "1")

    assert output.startswith(f"resuming {killed.name}:") and f"after memory {killed.cursor}" in output
    version = VectorIndex.objects.get(id=killed.id)
    assert version.state == "ready" and version.memories_done == total
    assert memories_in(version.namespace) == set(Memory.objects.values_list("id", flat=True))
    embedded = [r for r in fake_openai.requests[requests_before:] if r["path"] == "/v1/embeddings"]
    assert len(embedded) == total - killed.memories_done  # what the killed run had done is not done again


@pytest.mark.django_db
def test_a_version_on_pinecone_is_built_written_twice_and_dropped(indexed, fake_openai, fake_pinecone):
    from tests.conftest import DIMENSIONS

    call_command(
        "index_build", "--embedder", "openai", "--dimensions", str(DIMENSIONS), "--store", "pinecone",
        stdout=io.StringIO(),
    )  # fmt: skip
    version = VectorIndex.objects.latest("id")
    assert version.state == "ready" and version.store.startswith("pinecone/")
    held = fake_pinecone.vectors(version.namespace)
    assert {meta["memory_id"] for _, meta in held.values()} == {
        str(i) for i in Memory.objects.values_list("id", flat=True)
    }

    created = indexed.post("/memories", {"uid": "alice", "transcript": GARDEN}).json()
    assert any(meta["memory_id"] == str(created["id"]) for _, meta in fake_pinecone.vectors(version.namespace).values())
    indexed.delete(f"/memories/{created['id']}")
    assert not any(
        meta["memory_id"] == str(created["id"]) for _, meta in fake_pinecone.vectors(version.namespace).values()
    )
    assert len(fake_pinecone.vectors(version.namespace)) == len(held)

    call_command("index_drop", version.name, stdout=io.StringIO())
    assert fake_pinecone.vectors(version.namespace) == {}
    assert not VectorIndex.objects.filter(id=version.id).exists()


@pytest.mark.django_db
def test_the_index_view_lists_the_versions_with_their_state_counts_and_progress(indexed, fake_openai, signed_in):
    build()
    live, new = VectorIndex.objects.order_by("id")
    building, _ = index_version_start(
        embedder="openai", dimensions=DIMS // 2, vector_store="local", host="", actor=Actor.command()
    )
    VectorIndex.objects.filter(id=building.id).update(memories_total=4, memories_done=1)

    page = signed_in("admin").get("/vectors/").content.decode()

    rows = {v.name: page.split(f'id="version-{v.name}"')[1].split("</tr>")[0] for v in (live, new, building)}
    assert "active" in rows[live.name] and "all-MiniLM-L6-v2" in rows[live.name]
    assert "ready" in rows[new.name] and f">{DIMS}<" in rows[new.name]
    assert f">{LocalVector.objects.filter(namespace=new.namespace).count()}<" in rows[new.name]
    assert "building" in rows[building.name] and "1 of 4 memories" in rows[building.name]


@pytest.mark.django_db
def test_a_build_of_an_embedder_that_cannot_make_it_is_refused_before_anything_is_written(indexed):
    with pytest.raises(CommandError, match="no embedder 'local' with dimensions 64"):
        call_command("index_build", "--embedder", "local", "--dimensions", "64")
    with pytest.raises(CommandError, match="no embedder 'nonsense'"):
        call_command("index_build", "--embedder", "nonsense")
    assert not VectorIndex.objects.filter(state="building").exists()
