"""BM25 per user: which words count, and how many users' indexes a process keeps."""

import io

import numpy as np
import pytest
from cachetools import LRUCache
from django.utils import timezone

from memories.models import Memory
from memories.parts.vectorstores import SearchFilters
from search import lexical
from search.lexical import lexical_index

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_copy():
    """The process has no user's index at first (ids of rolled-back rows come back)."""
    lexical._cache.clear()


def indexed(uid: str, transcript: str) -> Memory:
    return Memory.objects.create(
        uid=uid, transcript=transcript, status=Memory.Status.INDEXED, indexed_at=timezone.now(), searchable=True
    )


def test_question_words_never_match_but_pronouns_and_content_words_do():
    indexed("alice", "Raj: What did she say about the boiler? When is it fixed?")

    _, question_only = lexical_index("alice").scores("What did they do when", SearchFilters())
    _, with_content = lexical_index("alice").scores("When did she mention the boilers?", SearchFilters())

    assert not question_only["lexical"].any()
    assert with_content["lexical"][0] > 0
    assert lexical._tokenize(["When did she mention the boilers?"]) == [["she", "mention", "boiler"]]


def test_a_process_keeps_the_most_recently_used_users_indexes(monkeypatch):
    monkeypatch.setattr(lexical, "_cache", LRUCache(2))
    for uid in ("a", "b", "c"):
        indexed(uid, f"{uid}: the boiler is leaking")

    first_a, first_b = lexical_index("a"), lexical_index("b")
    assert lexical_index("a") is first_a  # kept, and now the most recently used
    lexical_index("c")  # one too many: b, the least recently used, goes

    assert lexical_index("a") is first_a
    assert lexical_index("b") is not first_b  # built again
    assert len(lexical._cache) == 2


def test_an_index_is_built_again_when_the_users_memories_change():
    indexed("alice", "Raj: the boiler is leaking")
    before = lexical_index("alice")

    indexed("alice", "Raj: the plumber comes on Monday")

    after = lexical_index("alice")
    assert after is not before and len(after.memory_ids) == 2
    assert lexical_index("alice") is after


def _bm25s_scores(documents: list[list[str]], tokens: list[str]) -> np.ndarray:
    """What a bm25s index built afresh over `documents` scores them for `tokens`."""
    import bm25s

    index = bm25s.BM25()
    index.index(documents, show_progress=False)
    return np.asarray(index.get_scores(tokens), dtype=np.float64) if tokens else np.zeros(len(documents))


@pytest.mark.parametrize("first", [30, 0], ids=["30 memories first", "none first"])
def test_a_corpus_changed_step_by_step_scores_as_bm25s_built_afresh_over_what_is_left(monkeypatch, first):
    monkeypatch.setattr(lexical.Bm25Corpus, "COMPACT_MIN", 6)  # compactions as well as pending documents
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    make = lambda: list(rng.choice(words, size=int(rng.integers(0, 12))))  # noqa: E731 - empty ones too
    documents = {owner: [make() for _ in range(int(rng.integers(1, 4)))] for owner in range(first)}
    corpus = lexical.Bm25Corpus.build(
        [o for o, docs in documents.items() for _ in docs], [d for docs in documents.values() for d in docs]
    )
    for step in range(25):
        removed = set(
            rng.choice(list(documents), size=min(int(rng.integers(0, 3)), len(documents)), replace=False).tolist()
        )
        added = {o: [make() for _ in range(int(rng.integers(1, 4)))] for o in [100 + step, *list(removed)[:1]]}
        for owner in removed:
            del documents[owner]
        documents.update(added)
        corpus = corpus.changed(
            removed=removed,
            owners=[o for o, docs in added.items() for _ in docs],
            documents=[d for docs in added.values() for d in docs],
        )
        owners = [o for o, docs in documents.items() for _ in docs]
        for query in (["w1"], ["w2", "w3", "w2"], ["w39", "unknown"], ["unknown"]):
            expected = _bm25s_scores([d for docs in documents.values() for d in docs], query)
            best = {}
            for owner, score in zip(owners, expected.tolist()):
                if score > 0:
                    best[owner] = max(best.get(owner, 0.0), score)
            memory_ids = np.array(sorted(documents))
            found = dict(zip(memory_ids.tolist(), corpus.best(query, memory_ids).tolist()))
            assert {o: v for o, v in found.items() if v} == pytest.approx(best, rel=1e-5), (step, query)


def test_an_index_follows_memories_indexed_reprocessed_or_deleted_elsewhere_without_a_rebuild():
    """Rows changed in the database (by another process): each process applies the change."""
    boiler = indexed("alice", "Raj: the boiler is leaking again")
    plumber = indexed("alice", "Raj: the plumber comes on Monday for the boiler")
    garden = indexed("alice", "Raj: the garden needs water")
    before = lexical_index("alice")

    Memory.objects.filter(id=boiler.id).update(transcript="Raj: the roof is leaking", indexed_at=timezone.now())
    Memory.objects.filter(id=plumber.id).update(searchable=False, status=Memory.Status.DELETED)
    radiator = indexed("alice", "Raj: the radiator and the boiler are cold")
    after = lexical_index("alice")

    ids, signals = after.scores("boiler", SearchFilters())
    assert dict(zip(ids.tolist(), signals["lexical"] > 0)) == {boiler.id: False, garden.id: False, radiator.id: True}
    assert after.texts.vocab is before.texts.vocab  # changed, not built again
    lexical._cache.clear()
    fresh_ids, fresh = lexical_index("alice").scores("boiler roof leaking", SearchFilters())
    _, changed = after.scores("boiler roof leaking", SearchFilters())
    assert fresh_ids.tolist() == ids.tolist()
    for name in ("lexical", "exchanges"):
        assert changed[name] == pytest.approx(fresh[name], rel=1e-6)


def test_a_memory_tokenized_turn_by_turn_has_the_tokens_of_its_whole_text_and_exchanges():
    from tests.support.transcripts import BUDGET, DENTIST

    cases = [
        ("Dentist", "A crown, twelve hundred dollars", DENTIST),
        ("", "", BUDGET + "\n\n   \nRaj: one more line\r\nAna: and another"),
        ("Numbers only", "", "1 2 3"),
        ("", "", ""),
    ]

    for (title, overview, transcript), (text, exchanges) in zip(cases, lexical._memory_tokens(cases)):
        assert text == lexical._tokenize([f"{title}\n{overview}\n{transcript}"])[0]
        assert exchanges == lexical._tokenize(lexical._exchanges(transcript))


# Snapshots: a user's index saved for processes that have no copy (LexicalSnapshot).

QUERIES = ["crown cost", "mortgage bank rate", "dentist appointment tuesday", "billing deploy review", "nothing here"]


@pytest.fixture
def snapshots(monkeypatch):
    """Every change saves the user's snapshot (not only past SNAPSHOT_LAG memories)."""
    monkeypatch.setattr(lexical, "SNAPSHOT_LAG", 0)


@pytest.fixture
def tokenized(monkeypatch) -> list:
    """The memories (title, overview, transcript) that were tokenized since, in order."""
    seen, real = [], lexical._memory_tokens

    def spy(memories):
        seen.extend(memories)
        return real(memories)

    monkeypatch.setattr(lexical, "_memory_tokens", spy)
    return seen


def scores_of(index: lexical.LexicalIndex) -> list:
    out = []
    for query in QUERIES:
        ids, signals = index.scores(query, SearchFilters())
        out.append((ids.tolist(), signals["lexical"].tolist(), signals["exchanges"].tolist()))
    return out


def built_afresh(uid: str) -> lexical.LexicalIndex:
    """The user's index as a process with no copy and no snapshot builds it."""
    from search.models import LexicalSnapshot

    LexicalSnapshot.objects.filter(uid=uid).delete()
    lexical._cache.clear()
    return lexical_index(uid)


def three_memories(uid: str) -> list[Memory]:
    from tests.support.transcripts import BUDGET, DENTIST, STANDUP

    return [indexed(uid, transcript) for transcript in (DENTIST, BUDGET, STANDUP)]


def test_a_process_without_a_copy_loads_the_snapshot_and_scores_as_a_build(snapshots, tokenized):
    from search.models import LexicalSnapshot

    three_memories("alice")
    built = lexical_index("alice")
    assert LexicalSnapshot.objects.get(uid="alice").memories == 3
    tokenized.clear()

    lexical._cache.clear()  # another process
    loaded = lexical_index("alice")

    assert loaded is not built and tokenized == []  # nothing read again
    assert scores_of(loaded) == scores_of(built)
    assert any(any(scores) for _, scores, _ in scores_of(loaded))


def test_memories_added_reprocessed_or_deleted_after_the_snapshot_are_found_as_they_are_now(snapshots, tokenized):
    from tests.support.transcripts import GARDEN, RECITAL

    dentist, budget, standup = three_memories("alice")
    lexical_index("alice")
    # Another process, later: a memory added, one reprocessed with a new text, one deleted.
    garden = indexed("alice", GARDEN)
    Memory.objects.filter(id=dentist.id).update(transcript=RECITAL, indexed_at=timezone.now())
    Memory.objects.filter(id=budget.id).update(searchable=False, status=Memory.Status.DELETED)
    tokenized.clear()

    lexical._cache.clear()
    loaded = lexical_index("alice")

    assert sorted(transcript for _, _, transcript in tokenized) == sorted([GARDEN, RECITAL])  # only those read
    assert loaded.memory_ids.tolist() == sorted([dentist.id, standup.id, garden.id])
    ids, signals = loaded.scores("crown mortgage piano tomatoes", SearchFilters())
    found = {memory_id for memory_id, score in zip(ids.tolist(), signals["lexical"].tolist()) if score}
    assert found == {dentist.id, garden.id}  # the recital now, the garden; not the budget
    assert scores_of(loaded) == scores_of(built_afresh("alice"))


def _rewritten(data: bytes, **changes) -> bytes:
    """A snapshot's blob with some of its arrays replaced (each change: of the arrays, the new
    one): well-formed, but not a whole index."""
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as blob:
        arrays = {name: blob[name] for name in blob.files}
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, **{name: change(arrays) for name, change in changes.items()}})
    return buffer.getvalue()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda row: {"data": b"not a snapshot at all"}, id="garbage"),
        pytest.param(lambda row: {"data": bytes(row.data)[: len(row.data) // 2]}, id="truncated"),
        pytest.param(lambda row: {"layout": "an older tokenizer"}, id="other-layout"),
        pytest.param(
            lambda row: {"data": _rewritten(bytes(row.data), meta=lambda a: np.frombuffer(b'{"format": 0}', np.uint8))},
            id="other-format",
        ),
        pytest.param(
            lambda row: {"data": _rewritten(bytes(row.data), exchanges_owners=lambda a: a["exchanges_owners"][::-1])},
            id="inconsistent-arrays",
        ),
        pytest.param(
            lambda row: {"data": _rewritten(bytes(row.data), texts_wide=lambda a: a["texts_wide"] + 10**6)},
            id="documents-out-of-range",
        ),
    ],
)
def test_a_snapshot_that_cannot_be_read_is_ignored_and_replaced(snapshots, spoil):
    from search.models import LexicalSnapshot

    three_memories("alice")
    built = lexical_index("alice")
    row = LexicalSnapshot.objects.get(uid="alice")
    LexicalSnapshot.objects.filter(uid="alice").update(**spoil(row))

    lexical._cache.clear()
    index = lexical_index("alice")

    assert scores_of(index) == scores_of(built)
    replaced = LexicalSnapshot.objects.get(uid="alice")
    assert replaced.layout == lexical.snapshot_layout() and replaced.listed_at > row.listed_at
    lexical._cache.clear()
    assert scores_of(lexical.snapshot_read("alice")) == scores_of(built)  # a good one again


def test_a_users_snapshot_never_serves_another_user(snapshots):
    from search.models import LexicalSnapshot

    alices = three_memories("alice")
    lexical_index("alice")
    bob = indexed("bob", "Bob: the crown of the old oak fell on the shed")
    assert lexical_index("bob").memory_ids.tolist() == [bob.id]

    # Even alice's snapshot found under bob's name (a row copied by hand) is not taken for his.
    LexicalSnapshot.objects.filter(uid="bob").update(data=LexicalSnapshot.objects.get(uid="alice").data)
    lexical._cache.clear()
    assert lexical.snapshot_read("bob") is None
    ids, signals = lexical_index("bob").scores("crown", SearchFilters())
    assert ids.tolist() == [bob.id] and signals["lexical"][0] > 0
    assert lexical_index("alice").memory_ids.tolist() == sorted(m.id for m in alices)


def test_a_snapshot_is_replaced_only_by_one_of_a_later_state(snapshots):
    from datetime import timedelta

    from search.models import LexicalSnapshot

    three_memories("alice")
    index = lexical_index("alice")
    saved = LexicalSnapshot.objects.get(uid="alice").listed_at

    older = lexical.LexicalIndex(**{**vars(index), "listed_at": saved - timedelta(seconds=1)})
    assert lexical.snapshot_write(uid="alice", index=older) is False
    assert LexicalSnapshot.objects.get(uid="alice").listed_at == saved
    later = lexical.LexicalIndex(**{**vars(index), "listed_at": saved + timedelta(seconds=1)})
    assert lexical.snapshot_write(uid="alice", index=later) is True
    assert LexicalSnapshot.objects.get(uid="alice").listed_at == later.listed_at


def test_an_erased_user_keeps_no_snapshot(snapshots):
    from memories.services import user_erase
    from omi_memory.actors import Actor
    from search.models import LexicalSnapshot

    three_memories("alice")
    indexed("bob", "Bob: the crown of the old oak fell on the shed")
    lexical_index("alice"), lexical_index("bob")

    user_erase(uid="alice", actor=Actor.command())

    assert list(LexicalSnapshot.objects.values_list("uid", flat=True)) == ["bob"]
    assert lexical.snapshot_write(uid="alice", index=lexical._cache["alice"]) is False  # a late writer


def test_a_snapshot_that_cannot_be_saved_costs_the_search_nothing(snapshots, monkeypatch, caplog):
    from search.models import LexicalSnapshot

    def broken(uid, index):
        raise OSError("no space left on device")

    monkeypatch.setattr(lexical, "snapshot_encode", broken)
    dentist = three_memories("alice")[0]

    ids, signals = lexical_index("alice").scores("crown", SearchFilters())

    assert dict(zip(ids.tolist(), signals["lexical"] > 0))[dentist.id]
    assert not LexicalSnapshot.objects.exists() and "could not save the BM25 snapshot of alice" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_is_saved_by_a_thread_of_the_process_not_in_the_search(snapshots, settings, monkeypatch):
    """Committed rows: the writer's own connection sees only those."""
    import threading

    from search.models import LexicalSnapshot

    settings.LEXICAL_SNAPSHOT_BACKGROUND = True
    release, real = threading.Event(), lexical.snapshot_write

    def slow_write(**kwargs):
        release.wait(10)
        return real(**kwargs)

    monkeypatch.setattr(lexical, "snapshot_write", slow_write)
    three_memories("alice")

    index = lexical_index("alice")  # returns while the write waits

    assert not LexicalSnapshot.objects.filter(uid="alice").exists()
    release.set()
    lexical.writer.flush()
    assert LexicalSnapshot.objects.get(uid="alice").listed_at == index.listed_at


def test_the_command_saves_the_snapshots_a_first_search_would_otherwise_build(tokenized):
    """After an import or an upgrade: each user with more than --more-than memories and no
    snapshot of this layout gets one; a process then loads it instead of tokenizing every memory."""
    from django.core.management import call_command

    from search.models import LexicalSnapshot

    three_memories("alice")
    three_memories("bob")
    indexed("carol", "Carol: one memory only")
    LexicalSnapshot.objects.create(
        uid="bob",
        layout="an older tokenizer",
        listed_at=timezone.now(),
        memories=3,
        written_at=timezone.now(),
        data=b"",
    )

    call_command("lexical_snapshots", more_than=2, stdout=io.StringIO())

    assert {row.uid: (row.layout, row.memories) for row in LexicalSnapshot.objects.all()} == {
        "alice": (lexical.snapshot_layout(), 3),
        "bob": (lexical.snapshot_layout(), 3),  # another layout is rebuilt
    }  # carol has too few
    saved_at = {row.uid: row.written_at for row in LexicalSnapshot.objects.all()}
    tokenized.clear()

    call_command("lexical_snapshots", more_than=2, stdout=io.StringIO())  # nothing missing: nothing built
    assert {row.uid: row.written_at for row in LexicalSnapshot.objects.all()} == saved_at and tokenized == []
    ids, signals = lexical_index("alice").scores("crown", SearchFilters())
    assert tokenized == [] and signals["lexical"].any()  # loaded, not built
    assert scores_of(lexical_index("alice")) == scores_of(built_afresh("alice"))
    call_command("lexical_snapshots", uid="carol", stdout=io.StringIO())  # one user, whatever their size
    assert LexicalSnapshot.objects.get(uid="carol").memories == 1


@pytest.mark.django_db(transaction=True)
def test_a_celery_pool_process_saves_the_snapshots_its_writer_holds_before_it_ends(snapshots, settings, monkeypatch):
    """A pool process ends with os._exit (no atexit): Celery's worker_process_shutdown flushes first."""
    import threading

    from celery.signals import worker_process_shutdown

    from search.models import LexicalSnapshot

    settings.LEXICAL_SNAPSHOT_BACKGROUND = True
    started, real = threading.Event(), lexical.snapshot_write

    def slow_write(**kwargs):
        started.set()
        threading.Event().wait(0.5)
        return real(**kwargs)

    monkeypatch.setattr(lexical, "snapshot_write", slow_write)
    three_memories("alice")
    lexical_index("alice")
    started.wait(10)
    assert not LexicalSnapshot.objects.filter(uid="alice").exists()  # still being written

    worker_process_shutdown.send(sender=None, pid=0, exitcode=0)  # as the pool process ends

    assert LexicalSnapshot.objects.filter(uid="alice").exists()
