"""BM25 per user: which words count, and how many users' indexes a process keeps."""

import numpy as np
import pytest
from cachetools import LRUCache
from django.utils import timezone

from memories.models import Memory
from memories.parts.vectorstores import SearchFilters
from search import lexical
from search.lexical import lexical_index

pytestmark = pytest.mark.django_db


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


def test_a_corpus_changed_step_by_step_scores_as_bm25s_built_afresh_over_what_is_left(monkeypatch):
    monkeypatch.setattr(lexical.Bm25Corpus, "COMPACT_MIN", 6)  # compactions as well as pending documents
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    make = lambda: list(rng.choice(words, size=int(rng.integers(0, 12))))  # noqa: E731 - empty ones too
    documents = {owner: [make() for _ in range(int(rng.integers(1, 4)))] for owner in range(30)}
    corpus = lexical.Bm25Corpus.build(
        [o for o, docs in documents.items() for _ in docs], [d for docs in documents.values() for d in docs]
    )
    for step in range(25):
        removed = set(rng.choice(list(documents), size=int(rng.integers(0, 3)), replace=False).tolist())
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
