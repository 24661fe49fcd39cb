from datetime import UTC, datetime

import numpy as np
import pytest

from memories.models import ActionItem, AuditEvent, Event, Memory, MemoryVector
from memories.parts.vectorstores import get_vector_store
from memories.parts.vectorstores.base import SearchFilters
from memories.selectors import memory_vectors_matrix
from memories.services import memory_reprocess
from omi_memory.errors import Conflict
from search.analysis.duplicates import (
    duplicate_check_memories,
    duplicate_check_memory,
    duplicate_pair_dismiss,
    duplicate_pair_merge,
    duplicate_pair_unmerge,
    duplicate_scan,
    similar_pairs,
)
from search.models import DuplicatePair
from search.services import search_memories
from tests.support.actors import COMMAND, dashboard_actor
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST, GARDEN

# The dentist visit told again a little differently: nearly the same memory.
DENTIST_AGAIN = DENTIST.replace("next Tuesday at 3pm", "Tuesday next week at 3pm").replace(
    "Remind me to take", "Remind me that I take"
)
DENTIST_THIRD = DENTIST.replace("About twelve hundred dollars", "Roughly twelve hundred dollars")


def pairs_of(uid: str | None = None, **filters) -> set[tuple[int, int]]:
    rows = DuplicatePair.objects.filter(**filters)
    if uid:
        rows = rows.filter(uid=uid)
    return set(rows.values_list("memory_a_id", "memory_b_id"))


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_similar_pairs_equal_brute_force_across_block_boundaries():
    rng = np.random.default_rng(3)
    matrix = unit_rows(rng.standard_normal((100, 32)))
    # Near-duplicates inside one block, across neighbouring blocks and far apart (block = 16).
    for i, j in [(0, 1), (15, 16), (3, 97), (40, 63), (64, 80), (99, 98)]:
        matrix[j] = unit_rows(matrix[i : i + 1] + 0.05 * rng.standard_normal((1, 32)))[0]
    similarities = matrix @ matrix.T
    expected = {(i, j) for i in range(100) for j in range(i + 1, 100) if similarities[i, j] >= 0.9}

    found = similar_pairs(matrix, 0.9, block=16)

    assert {(i, j) for i, j, _ in found} == expected
    assert len(found) == len(expected) >= 6
    assert all(i < j and s == pytest.approx(similarities[i, j], abs=1e-5) for i, j, s in found)
    assert {(i, j) for i, j, _ in similar_pairs(matrix, 0.9, block=1024)} == expected


def test_similar_pairs_of_nothing_or_one_row_is_empty():
    assert similar_pairs(np.zeros((0, 8), dtype=np.float32), 0.9) == []
    assert similar_pairs(unit_rows(np.ones((1, 8))), 0.9) == []


def test_scan_finds_exactly_the_near_identical_pair(remember):
    first = remember("alice", DENTIST)
    again = remember("alice", DENTIST_AGAIN)
    remember("alice", BUDGET)
    DuplicatePair.objects.all().delete()  # what the incremental check found: the scan must find it alone

    counts = duplicate_scan(uid="alice")

    assert pairs_of("alice") == {(first.id, again.id)}
    assert counts["pairs"] == 1 and counts["created"] == 1 and counts["memories"] == 3
    pair = DuplicatePair.objects.get()
    assert pair.status == DuplicatePair.Status.OPEN and pair.similarity >= 0.95
    assert duplicate_scan(uid="alice", threshold=0.9999)["pairs"] == 0


def test_a_newly_indexed_near_duplicate_gets_an_open_pair_without_a_scan(remember):
    first = remember("alice", DENTIST)
    remember("alice", GARDEN)
    assert not DuplicatePair.objects.exists()

    again = remember("alice", DENTIST_AGAIN)

    assert pairs_of("alice", status="open") == {(first.id, again.id)}


def test_a_dismissed_pair_is_not_raised_again_by_a_scan_or_the_check(remember):
    first = remember("alice", DENTIST)
    again = remember("alice", DENTIST_AGAIN)
    pair = DuplicatePair.objects.get()

    duplicate_pair_dismiss(pair_id=pair.id, actor=COMMAND)
    counts = duplicate_scan(uid="alice")
    duplicate_check_memory(memory_id=again.id)
    with committed():
        memory_reprocess(memory=again, actor=COMMAND)  # indexed again: the pipeline checks it again

    assert Memory.objects.get(id=again.id).status == Memory.Status.INDEXED
    assert counts["kept_closed"] == 1 and counts["created"] == 0
    assert list(DuplicatePair.objects.values_list("memory_a_id", "memory_b_id", "status")) == [
        (first.id, again.id, "dismissed")
    ]


def test_merge_moves_items_deletes_the_other_with_its_vectors_and_closes_its_pairs(remember):
    keep = remember("alice", DENTIST)
    other = remember("alice", DENTIST_AGAIN)
    third = remember("alice", DENTIST_THIRD)
    assert pairs_of("alice", status="open") == {(keep.id, other.id), (keep.id, third.id), (other.id, third.id)}
    ActionItem.objects.create(memory=other, description="Bring the insurance card")
    Event.objects.create(memory=other, title="Crown fitting", start=datetime(2026, 3, 3, 15, tzinfo=UTC))
    moved_items = set(ActionItem.objects.filter(memory=other).values_list("description", flat=True))
    moved_events = set(Event.objects.filter(memory=other).values_list("title", flat=True))
    kept_items = set(ActionItem.objects.filter(memory=keep).values_list("description", flat=True))
    pair = DuplicatePair.objects.get(memory_a=keep, memory_b=other)
    admin = _user("boss")

    with committed():  # the merged-away memory's vectors are removed once the merge commits
        duplicate_pair_merge(pair_id=pair.id, keep_id=keep.id, actor=dashboard_actor(admin))

    pair.refresh_from_db()
    assert (pair.status, pair.kept_id, pair.resolved_by, pair.resolved_at is not None) == (
        "merged",
        keep.id,
        admin,
        True,
    )
    assert Memory.objects.get(id=other.id).status == Memory.Status.DELETED
    assert Memory.objects.get(id=keep.id).status == Memory.Status.INDEXED
    assert set(ActionItem.objects.filter(memory=keep).values_list("description", flat=True)) == kept_items | moved_items
    assert set(Event.objects.filter(memory=keep).values_list("title", flat=True)) >= moved_events
    # What both had (near-duplicates share most items) is there once, not twice.
    descriptions = list(ActionItem.objects.filter(memory=keep).values_list("description", flat=True))
    assert len(descriptions) == len(set(descriptions))
    events = list(Event.objects.filter(memory=keep).values_list("title", "start"))
    assert len(events) == len(set(events))
    # Reprocessing the kept memory re-extracts its own items and keeps the ones merged into it.
    with committed():
        memory_reprocess(memory=keep, actor=COMMAND)
    assert Memory.objects.get(id=keep.id).status == Memory.Status.INDEXED
    assert "Bring the insurance card" in set(
        ActionItem.objects.filter(memory=keep).values_list("description", flat=True)
    )
    assert "Crown fitting" in set(Event.objects.filter(memory=keep).values_list("title", flat=True))
    # Its vectors are gone, from the database and from the store: a search cannot return it.
    assert not MemoryVector.objects.filter(memory=other).exists()
    query = MemoryVector.objects.get(memory=keep, position=0).as_array()
    found = {
        m.memory_id for m in get_vector_store().query_vectors(query, uid="alice", top_k=None, filters=SearchFilters())
    }
    assert str(keep.id) in found and str(other.id) not in found
    # Its other open pair is closed; the kept memory's pair with the third stays open.
    assert pairs_of("alice", status="open") == {(keep.id, third.id)}
    assert not DuplicatePair.objects.filter(memory_a=other, memory_b=third).exists()


def test_unmerge_restores_the_memory_its_vectors_items_and_other_pairs(remember):
    keep = remember("alice", DENTIST)
    other = remember("alice", DENTIST_AGAIN)
    third = remember("alice", DENTIST_THIRD)
    own = ActionItem.objects.filter(memory=other).exclude(description__in=keep.action_items.values("description"))
    own.update(completed=True)  # what only this copy has moves to the kept memory, and comes back as it was
    items = set(ActionItem.objects.filter(memory=other).values_list("description", "completed"))
    events = set(Event.objects.filter(memory=other).values_list("title", "start"))
    pair = DuplicatePair.objects.get(memory_a=keep, memory_b=other)
    admin = _user("boss")
    with committed():
        duplicate_pair_merge(pair_id=pair.id, keep_id=keep.id, actor=dashboard_actor(admin))
    assert Memory.objects.get(id=other.id).merged_into_id == keep.id
    assert ActionItem.objects.filter(memory=keep, merged_from=other, completed=True).exists()
    query = "insurance card crown dentist"
    hits = search_memories(uid="alice", queries=[query], k=10).hits
    assert other.id not in [r.memory.id for r in hits] + [also for r in hits for also in r.also]

    with committed():  # the memory goes through the pipeline again once the unmerge commits
        duplicate_pair_unmerge(pair_id=pair.id, actor=dashboard_actor(admin))

    restored = Memory.objects.get(id=other.id)
    assert (restored.status, restored.merged_into_id, restored.searchable) == (Memory.Status.INDEXED, None, True)
    assert MemoryVector.objects.filter(memory=other).exists()
    hits = search_memories(uid="alice", queries=[query], k=10).hits
    assert other.id in [r.memory.id for r in hits] + [also for r in hits for also in r.also]  # its pair is open again
    assert set(ActionItem.objects.filter(memory=other).values_list("description", "completed")) == items
    assert set(Event.objects.filter(memory=other).values_list("title", "start")) == events
    assert not ActionItem.objects.filter(memory=keep, merged_from=other).exists()
    # The pair is open again, and so is its pair with the third copy (the check after indexing).
    assert pairs_of("alice", status="open") == {(keep.id, other.id), (keep.id, third.id), (other.id, third.id)}
    actions = list(
        AuditEvent.objects.filter(uid="alice").values_list("action", "actor_name", "details__restored_memory")
    )
    assert actions[:2] == [("duplicates.unmerge", "boss", other.id), ("duplicates.merge", "boss", None)]
    with pytest.raises(Conflict):  # once: it is open again
        duplicate_pair_unmerge(pair_id=pair.id, actor=COMMAND)


def test_merging_or_dismissing_a_pair_that_is_not_open_is_a_conflict(remember):
    first = remember("alice", DENTIST)
    remember("alice", DENTIST_AGAIN)
    pair = DuplicatePair.objects.get()
    duplicate_pair_merge(pair_id=pair.id, keep_id=first.id, actor=COMMAND)

    with pytest.raises(Conflict):
        duplicate_pair_merge(pair_id=pair.id, keep_id=first.id, actor=COMMAND)
    with pytest.raises(Conflict):
        duplicate_pair_dismiss(pair_id=pair.id, actor=COMMAND)
    assert DuplicatePair.objects.get().status == "merged"


def test_never_a_pair_across_users(remember):
    alice = remember("alice", DENTIST)
    bob = remember("bob", DENTIST)
    bobs_again = remember("bob", DENTIST_AGAIN)

    counts = duplicate_scan()

    assert counts["users"] == 2
    assert pairs_of() == {(bob.id, bobs_again.id)}
    assert DuplicatePair.objects.get().uid == "bob"
    assert alice.id not in {m for pair in pairs_of() for m in pair}


def test_a_failing_check_never_fails_the_pipeline(remember, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the check broke")

    monkeypatch.setattr("search.analysis.duplicates.duplicate_check_memories", broken)
    remember("alice", DENTIST)

    again = remember("alice", DENTIST_AGAIN)

    assert again.status == Memory.Status.INDEXED and again.failure_reason == ""
    assert not DuplicatePair.objects.exists()


def test_the_threshold_setting_applies_to_the_check(remember, settings):
    settings.DUPLICATE_THRESHOLD = 0.05  # far below any real duplicate
    dentist = remember("alice", DENTIST)
    budget = remember("alice", BUDGET)

    assert pairs_of("alice") == {(dentist.id, budget.id)}


def _user(name: str):
    from django.contrib.auth.models import User

    return User.objects.create_user(name)


def _stored(uid: str, vector: np.ndarray) -> Memory:
    """An indexed memory whose own vector is `vector`, as the pipeline keeps it."""
    from memories.parts.embedders import get_embedder

    memory = Memory.objects.create(uid=uid, transcript="Speaker 0: a memory.", status=Memory.Status.INDEXED)
    _revector(memory, vector, model=get_embedder().model)
    return memory


def _revector(memory: Memory, vector: np.ndarray, *, model: str) -> None:
    """The memory's vectors written anew (as a reprocess writes them)."""
    MemoryVector.objects.filter(memory=memory).delete()
    MemoryVector.objects.create(
        memory=memory,
        position=0,
        vector_id=memory.vector_id,
        model=model,
        dim=len(vector),
        vector=np.asarray(vector, dtype="<f4").tobytes(),
    )


def _brute_force_pairs(uid: str, threshold: float = 0.95) -> set[tuple[int, int]]:
    """Every pair over the threshold, from the user's vectors read from the database afresh."""
    rows = list(
        MemoryVector.objects.filter(memory__uid=uid, memory__status=Memory.Status.INDEXED, position=0)
        .order_by("memory_id")
        .values_list("memory_id", "vector")
    )
    ids = [memory_id for memory_id, _ in rows]
    matrix = unit_rows(np.vstack([np.frombuffer(bytes(v), dtype="<f4") for _, v in rows]))
    scores = matrix @ matrix.T
    return {(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)) if scores[i, j] >= threshold}


@pytest.mark.parametrize("settle", [60.0, 0.0], ids=["young process: whole listing", "only rows since"])
def test_the_check_of_new_memories_finds_the_pairs_a_full_read_finds_after_the_users_vectors_changed(
    db, monkeypatch, settle
):
    from memories import selectors
    from memories.parts.embedders import get_embedder

    monkeypatch.setattr(selectors, "SETTLE_SECONDS", settle)

    rng = np.random.default_rng(17)
    near = lambda row: unit_rows(row[None] + 0.01 * rng.standard_normal((1, 64)))[0]  # noqa: E731 - cosine ~0.995
    base = unit_rows(rng.standard_normal((40, 64)))
    memories = [_stored("heavy", row) for row in base]
    _stored("other", base[3])  # another user's copy: never a pair
    duplicate_scan(uid="heavy")  # reads (and keeps) the user's matrix: nothing similar yet
    assert not DuplicatePair.objects.exists()

    # Changes the kept matrix has not seen: a new near-copy of memory 3, memory 7 reprocessed into a
    # near-copy of memory 9, memory 11 deleted just after a near-copy of it was added.
    copy_of_3 = _stored("heavy", near(base[3]))
    _revector(memories[7], near(base[9]), model=get_embedder().model)
    copy_of_11 = _stored("heavy", near(base[11]))
    Memory.objects.filter(id=memories[11].id).update(status=Memory.Status.DELETED)
    MemoryVector.objects.filter(memory=memories[11]).delete()

    duplicate_check_memories(memory_ids=[copy_of_3.id, memories[7].id, copy_of_11.id])

    expected = _brute_force_pairs("heavy")
    assert expected == {(memories[3].id, copy_of_3.id), (memories[7].id, memories[9].id)}
    assert pairs_of("heavy") == expected
    assert pairs_of("other") == set()
    # The scan over the same (now kept) matrix agrees, and with the whole user read afresh.
    DuplicatePair.objects.all().delete()
    assert duplicate_scan(uid="heavy")["pairs"] == 2 and pairs_of("heavy") == expected
    ids, matrix = memory_vectors_matrix(uid="heavy")
    fresh_ids, fresh = memory_vectors_matrix(uid="heavy", memory_ids=ids)
    assert ids == fresh_ids and np.array_equal(matrix, fresh) and memories[11].id not in ids
