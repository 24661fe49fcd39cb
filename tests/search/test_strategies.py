"""Each strategy's ordering on small hand-made cases, and filters and isolation on every strategy."""

from datetime import UTC, datetime, timedelta

import pytest

from memories.parts.embedders.base import Embedder
from memories.parts.embedders.local import LocalEmbedder
from search.models import DuplicatePair, SearchLog
from search.strategies import HYBRID_WEIGHTS, STRATEGIES, hybrid_weights
from tests.support.memories import alices_five_and_bobs_one
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP

pytestmark = pytest.mark.django_db
NOW = datetime.now(UTC)


def found(api, uid="alice", **body) -> list[int]:
    response = api.post("/search", {"uid": uid, **body})
    assert response.status_code == 200, response.content
    return [hit["memory"]["id"] for hit in response.json()["results"]]


def scores(api, **body) -> list[float]:
    response = api.post("/search", {"uid": "alice", "query": "cracked crown", **body})
    assert response.status_code == 200, response.content
    return [hit["score"] for hit in response.json()["results"]]


def test_recency_decides_between_two_equal_matches_by_a_half_life(api, remember):
    old = remember("alice", DENTIST, created_at=NOW - timedelta(days=31))
    new = remember("alice", DENTIST, created_at=NOW - timedelta(days=1))
    DuplicatePair.objects.update(status=DuplicatePair.Status.DISMISSED)  # not duplicates: both are listed

    assert found(api, query="cracked crown", strategy="time_weighted", k=2) == [new.id, old.id]
    default = scores(api, strategy="time_weighted", k=2)  # a half-life of 30 days
    assert default[1] == pytest.approx(default[0] / 2, rel=0.01)
    week = scores(api, strategy="time_weighted", k=2, half_life_days=7.5)
    assert week[1] == pytest.approx(week[0] / 16, rel=0.01)
    # the seed's rate per day still works: exp(-0.1 x 30 days) = 0.5 ** (30 / (ln 2 / 0.1))
    seed = scores(api, strategy="time_weighted", k=2, time_decay=0.1)
    assert seed[1] == pytest.approx(seed[0] * 2.718281828 ** (-0.1 * 30), rel=0.01)
    no_decay = scores(api, strategy="time_weighted", k=2, time_decay=0)
    assert no_decay[0] == pytest.approx(no_decay[1])
    # a rate too small for any half-life (ln 2 / 5e-324 overflows) decays as little as the longest one
    assert scores(api, strategy="time_weighted", k=2, time_decay=5e-324) == pytest.approx(no_decay, rel=1e-3)


def test_old_memories_keep_readable_time_weighted_scores(api, remember):
    """Counted from the newest result, not from today: two years old, the closest still scores as
    its similarity (the seed's exp(-0.1 x 730 days) showed 0.000 for everything)."""
    remember("alice", DENTIST, created_at=NOW - timedelta(days=730))
    remember("alice", BUDGET, created_at=NOW - timedelta(days=740))

    weighted = scores(api, strategy="time_weighted", k=1)
    assert weighted == pytest.approx(scores(api, strategy="semantic", k=1)) and weighted[0] > 0.3


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_scores_on_zero_to_one_best_first(api, remember, strategy):
    for transcript in (DENTIST, BUDGET, GARDEN):
        remember("alice", transcript)

    found_scores = scores(api, strategy=strategy, k=3, **({"queries": ["crown"]} if strategy == "multi_query" else {}))
    assert len(found_scores) == 3 and found_scores == sorted(found_scores, reverse=True)
    assert all(0 <= score <= 1 for score in found_scores)


def test_fused_queries_find_what_neither_query_finds_alone(api, remember, settings):
    # memories of a few turns, each snippet embedded alone: with late chunking a short memory's
    # snippets all read the whole memory, and the one about both topics is no longer apart
    settings.SNIPPET_VECTORS = "texts"
    remember("alice", DENTIST)
    remember("alice", BUDGET)
    both = remember(
        "alice",
        "Alice: Between the new dental crown and refinancing the mortgage, this month is "
        "expensive.\nBen: Yeah, the crown and the mortgage paperwork both land this week.",
    )
    remember("alice", GARDEN)
    first, second = "cracked crown at the dentist", "refinancing the mortgage at a lower rate"

    assert both.id not in found(api, query=first, strategy="semantic", k=1)
    assert both.id not in found(api, query=second, strategy="semantic", k=1)
    assert found(api, queries=[first, second], strategy="multi_query", fusion="sum", k=1) == [both.id]
    # reciprocal rank fusion: second twice is worth about first once and third once
    assert both.id in found(api, queries=[first, second], strategy="multi_query", fusion="rrf", k=3)


def test_a_keyword_only_match_is_found_by_hybrid(api, remember):
    for transcript in (DENTIST, BUDGET, STANDUP, RECITAL, GARDEN):
        remember("alice", transcript)
    part = remember(
        "alice",
        "Raj: The replacement valve is part XR-7431, it ships from the Hoboken warehouse.\nAlice: Okay, I'll order it.",
    )

    assert found(api, query="XR-7431", strategy="hybrid", k=1) == [part.id]
    assert found(api, query="Hoboken", k=1) == [part.id]  # hybrid is the default


def body(strategy: str, **extra) -> dict:
    query = {"queries": ["dentist crown", "family piano"]} if strategy == "multi_query" else {"query": "dentist crown"}
    return {"strategy": strategy, "k": 10, "half_life_days": 70, **query, **extra}


@pytest.fixture(scope="class")
def five(shared_rows):
    with shared_rows():
        yield alices_five_and_bobs_one()


class TestEveryStrategyOverFiveMemories:
    """Searches on every strategy that only read the same memories, made once for the class
    (tests/support/memories.py)."""

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_filters_hold_on_every_strategy(self, api, five, strategy):
        in_range = found(api, **body(strategy, starts_at="2026-02-02T00:00:00Z", ends_at="2026-02-04T23:00:00Z"))
        phone = found(api, **body(strategy, sources=["phone"]))
        finance = found(api, **body(strategy, categories=["finance"]))

        assert set(in_range) <= {five[n].id for n in ("budget", "standup", "recital")} and in_range
        assert set(phone) <= {five["budget"].id, five["garden"].id} and phone
        assert finance == [five["budget"].id]

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_no_strategy_returns_another_users_memory(self, api, five, strategy):
        results = found(api, **body(strategy))

        assert five["bob"].id not in results
        assert set(results) <= {m.id for n, m in five.items() if n != "bob"}
        assert found(api, uid="nobody", **body(strategy)) == []

    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_every_search_is_logged(self, api, five, strategy):
        response = api.post("/search", {"uid": "alice", **body(strategy)}).json()

        log = SearchLog.objects.get(id=response["search_id"])
        assert log.uid == "alice" and log.strategy == strategy and log.api_key is not None
        assert log.queries == response["queries"] and log.params["k"] == 10
        assert [r["memory_id"] for r in log.results] == [h["memory"]["id"] for h in response["results"]]
        assert log.latency_ms > 0


@pytest.mark.parametrize(
    "extra",
    [
        {"strategy": "keyword"},
        {"fusion": "max"},
        {"time_decay": -1},
        {"half_life_days": 0},
        {"half_life_days": 30, "time_decay": 0.1},
        {"relevance_floor": 1.5},
        {"queries": ["a", "b"]},
        {"queries": []},
        {"queries": ["ok", "  "], "strategy": "multi_query"},
        {"query": None},
    ],
)
def test_bad_strategy_parameters_get_a_422(api, extra):
    response = api.post(
        "/search", {"uid": "alice", "query": "dentist", **extra} if "query" not in extra else {"uid": "alice", **extra}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_the_lexical_index_follows_the_users_memories(api, remember):
    from search.lexical import lexical_index

    first = remember("alice", "Raj: The valve is part XR-7431.\nAlice: Okay.")
    assert found(api, query="XR-7431", k=1) == [first.id]
    version = lexical_index("alice").version

    second = remember("alice", "Raj: Sorry, the right part is QZ-9902, not the other one.\nAlice: Got it.")
    assert found(api, query="QZ-9902", k=1) == [second.id]  # rebuilt: the new memory is in it
    assert lexical_index("alice").version != version

    assert api.delete(f"/memories/{second.id}").status_code == 204
    assert second.id not in found(api, query="QZ-9902", k=5)


def test_lexical_scores_a_memory_by_its_best_exchange_too(remember):
    from memories.parts.vectorstores import SearchFilters
    from search.lexical import lexical_index

    filler = "\n".join(f"{'Raj' if i % 2 else 'Alice'}: Sure, sounds good, talk soon about item {i}." for i in range(6))
    close = remember("alice", f"Raj: The boiler is leaking.\nAlice: Call the plumber.\n{filler}")
    apart = remember("alice", f"Raj: The boiler is leaking.\n{filler}\nAlice: Call the plumber.")

    memory_ids, signals = lexical_index("alice").scores("boiler plumber", SearchFilters())
    exchanges = dict(zip(memory_ids.tolist(), signals["exchanges"]))
    assert exchanges[close.id] > exchanges[apart.id]
    assert set(signals) == {"lexical", "exchanges", "month"} and not signals["month"].any()


def test_a_month_the_query_names_favours_that_months_memories(api, remember):
    february = remember("alice", DENTIST, created_at=datetime(2026, 2, 10, 12, tzinfo=UTC))
    march = remember("alice", DENTIST, created_at=datetime(2026, 3, 10, 12, tzinfo=UTC))
    DuplicatePair.objects.update(status=DuplicatePair.Status.DISMISSED)  # not duplicates: both are listed

    assert found(api, query="What did the dentist say in March?", k=2) == [march.id, february.id]
    assert found(api, query="What did the dentist say in February?", k=2) == [february.id, march.id]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    "transcripts",
    [[], ["A: 0"], ["A: 0", "B: the of and 1 2 3"], [DENTIST], ["A: 0", DENTIST]],
    ids=["none", "one-without-words", "two-without-words", "one", "one-without-one-with-words"],
)
def test_every_strategy_answers_for_a_user_with_no_memory_one_or_none_with_a_word(api, remember, strategy, transcripts):
    made = [remember("carol", transcript).id for transcript in transcripts]
    body = {"uid": "carol", "query": "what did the dentist say about 0", "strategy": strategy, "k": 3}
    if strategy == "multi_query":
        body["queries"] = ["crown"]

    response = api.post("/search", body)

    assert response.status_code == 200
    assert {hit["memory"]["id"] for hit in response.json()["results"]} <= set(made)
    if DENTIST in transcripts:
        assert response.json()["results"]


def test_hybrid_weighs_windows_less_when_they_and_the_snippets_share_their_reads(settings):
    # late chunking pools a memory's windows and snippets from the same reads: the windows signal
    # mostly repeats the snippets' and weighs half as much; snippets embedded apart keep the weights
    settings.SNIPPET_VECTORS = "late"
    late = hybrid_weights(LocalEmbedder())
    assert late["windows"] == HYBRID_WEIGHTS["windows"] / 2
    assert {k: v for k, v in late.items() if k != "windows"} == {
        k: v for k, v in HYBRID_WEIGHTS.items() if k != "windows"
    }
    assert hybrid_weights(Embedder()) == HYBRID_WEIGHTS  # a remote embedder: windows only
    settings.SNIPPET_VECTORS = "texts"
    assert hybrid_weights(LocalEmbedder()) == HYBRID_WEIGHTS
