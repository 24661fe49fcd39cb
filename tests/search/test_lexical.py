"""BM25 per user: which words count, and how many users' indexes a process keeps."""

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
