"""`manage.py tune`: fitting a strategy's parameters to judgments, with cross-validation; the
profile it stores, used by searches only once activated."""

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from memories.models import AuditEvent, Memory
from search import tuning
from search.models import DuplicatePair, ParameterProfile, SearchLog
from search.strategies import (
    HYBRID_MAX_SNIPPETS,
    HYBRID_SIGNALS,
    HybridSignals,
    hybrid_fuse,
    resolve_params,
    weight_param,
)
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP

pytestmark = pytest.mark.django_db

TRUTH = {
    "lexical_weight": 0.5,
    "exchanges_weight": 0.0,
    "snippets_weight": 0.2,
    "windows_weight": 0.0,
    "month_weight": 0.3,
    "snippets_per_memory": 1,
}


def synthetic_queries(truth: dict, *, queries: int = 200, candidates: int = 15) -> list[tuning.Recorded]:
    """Queries whose signals are random and whose relevant memories are the first two that `truth`
    ranks: the only weights that rank them all right are (a multiple of) the truth's."""
    rng = np.random.default_rng(1)
    made = []
    for _ in range(queries):
        ids = list(range(1, candidates + 1))
        signals = {name: rng.random(candidates) for name in ("lexical", "exchanges", "windows")}
        signals["month"] = (rng.random(candidates) < 0.2).astype(float)
        snippets = np.full((candidates, HYBRID_MAX_SNIPPETS), np.nan)
        snippets[:, :3] = -np.sort(-rng.random((candidates, 3)))  # best first
        recorded = HybridSignals(ids, signals, snippets, {})
        _, order = hybrid_fuse(recorded, truth, "sum")
        relevant = {ids[i] for i in order[:2]}
        made.append(tuning.Recorded(tuning.Judged("u", "q", None, relevant, "judged"), recorded))
    return made


def shares(params: dict) -> np.ndarray:
    """Each signal's weight over their sum: what a ranking by weighted sum depends on."""
    weights = np.array([params[weight_param(s)] for s in HYBRID_SIGNALS])
    return weights / weights.sum()


def test_tune_recovers_known_weights_from_synthetic_judgments(settings):
    settings.SNIPPET_VECTORS = "late"
    truth = resolve_params("hybrid", TRUTH)
    start = resolve_params("hybrid")

    per_fold, before, after, fitted = tuning.cross_validate(
        synthetic_queries(truth), strategy="hybrid", fusion="sum", folds=5, start=start
    )

    assert np.abs(shares(fitted) - shares(truth)).max() < 0.05, fitted  # the weights' proportions
    assert fitted["snippets_per_memory"] == 1  # the mean of the best one snippet, as the truth ranks
    assert before["ndcg@10"] < 0.85 and after["ndcg@10"] > 0.98  # on held-out folds
    assert len(per_fold) == 5 and all(f["after"]["ndcg@10"] > f["before"]["ndcg@10"] for f in per_fold)
    assert sum(f["held_out"] for f in per_fold) == 200 and all(f["train"] == 160 for f in per_fold)


MONTHS = {"February": STANDUP, "March": BUDGET, "April": RECITAL, "May": DENTIST, "June": GARDEN}
TOPICS = ["the cracked crown", "the mortgage payment", "the vegetable garden", "the piano recital", "the sprint demo"]
BY_MONTH = {  # the truth: a query names a month, and the memory of that month is what it wants
    "lexical_weight": 0,
    "exchanges_weight": 0,
    "snippets_weight": 0.2,
    "windows_weight": 0,
    "month_weight": 1,
}


@pytest.fixture
def judged_by_month(api, remember):
    """Alice's five memories, one a month; 25 searches ("the cracked crown in March", ...) judged by
    an analyst who wanted the memory of the month named: the first result by BY_MONTH's weights
    relevant, the second not."""
    made = {
        month: remember("alice", text, created_at=datetime(2026, i + 2, 10, 12, tzinfo=UTC))
        for i, (month, text) in enumerate(MONTHS.items())
    }
    DuplicatePair.objects.all().delete()
    for topic in TOPICS:
        for month in MONTHS:
            search = api.post("/search", {"uid": "alice", "query": f"{topic} in {month}", "k": 2, "params": BY_MONTH})
            first, second = [hit["memory"]["id"] for hit in search.json()["results"]]
            assert first == made[month].id
            for memory_id, relevant in ((first, True), (second, False)):
                feedback = {"search_id": search.json()["search_id"], "memory_id": memory_id, "relevant": relevant}
                assert api.post("/search/feedback", feedback).status_code == 201
    return made


def first_found(api, query: str) -> int:
    response = api.post("/search", {"uid": "alice", "query": query, "k": 3})
    assert response.status_code == 200
    return response.json()["results"][0]["memory"]["id"]


def test_tune_fits_judgments_and_the_profile_changes_searches_once_activated(api, judged_by_month, settings):
    settings.TUNE_MIN_QUERIES = 25
    out = io.StringIO()

    call_command("tune", "--strategy", "hybrid", "--folds", "5", "--name", "by-month", stdout=out)

    profile = ParameterProfile.objects.get(name="by-month")
    assert not profile.active and profile.strategy == "hybrid"
    source = profile.source
    assert (source["judged_queries"], source["judgments"], source["labelled_queries"], source["folds"]) == (
        25,
        50,
        0,
        5,
    )
    assert source["before"]["ndcg@10"] < 0.8 and source["after"]["ndcg@10"] == 1.0  # held out
    weights = {s: profile.params[weight_param(s)] for s in HYBRID_SIGNALS}
    assert max(weights, key=weights.get) == "month"
    printed = out.getvalue()
    assert "25 judged queries (50 judgments), 5 folds; before: the defaults" in printed
    assert "all held out" in printed and "python manage.py activate_profile by-month" in printed
    listed = io.StringIO()
    call_command("list_profiles", stdout=listed)
    assert listed.getvalue().startswith("by-month  hybrid  inactive  ")
    assert f"nDCG@10 {source['before']['ndcg@10']:.4f} -> 1.0000 held out, 25 judged + 0 labelled" in listed.getvalue()

    # stored, not used: searches keep the defaults until an admin activates it
    crown_in_march = "the cracked crown in March"
    assert first_found(api, crown_in_march) == judged_by_month["May"].id
    call_command("activate_profile", "by-month", stdout=io.StringIO())
    assert first_found(api, crown_in_march) == judged_by_month["March"].id
    logged = SearchLog.objects.order_by("-id").first()
    assert logged.params["profile"] == "by-month" and logged.params["strategy_params"] == profile.params
    event = AuditEvent.objects.get(action=AuditEvent.Action.PROFILE_ACTIVATE)
    assert event.actor_type == "command" and event.target_ids == [profile.id] and event.details["name"] == "by-month"

    call_command("deactivate_profile", "hybrid", stdout=io.StringIO())
    assert first_found(api, crown_in_march) == judged_by_month["May"].id
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PROFILE_DEACTIVATE).count() == 1


def test_tune_refuses_under_the_minimum_of_judged_queries(api, remember):
    dentist = remember("alice", DENTIST)
    remember("alice", BUDGET)
    for query in ("crown", "dentist", "molar"):
        search = api.post("/search", {"uid": "alice", "query": query, "k": 1}).json()
        api.post("/search/feedback", {"search_id": search["search_id"], "memory_id": dentist.id, "relevant": True})

    with pytest.raises(CommandError) as refused:
        call_command("tune", "--strategy", "hybrid", stdout=io.StringIO())

    assert str(refused.value) == (
        "too few judged queries to tune hybrid: 3 (searches with a result judged relevant), at least 30 are "
        "needed (TUNE_MIN_QUERIES). Judge more results on the search page, or add a labelled set with --labelled."
    )
    assert not ParameterProfile.objects.exists()


def test_tune_refuses_a_strategy_it_cannot_fit_and_a_name_in_use():
    with pytest.raises(CommandError, match="tune fits hybrid; semantic cannot be tuned yet"):
        call_command("tune", "--strategy", "semantic", stdout=io.StringIO())
    ParameterProfile.objects.create(name="taken", strategy="hybrid", params=resolve_params("hybrid"))
    with pytest.raises(CommandError, match="a profile named 'taken' exists already"):
        call_command("tune", "--strategy", "hybrid", "--name", "taken", stdout=io.StringIO())


def test_tune_adds_a_labelled_sets_dev_questions_and_leaves_nothing_of_it_behind(tiny_dataset, settings):
    settings.TUNE_MIN_QUERIES = 3
    out = io.StringIO()

    call_command("tune", "--strategy", "hybrid", "--labelled", str(tiny_dataset), "--folds", "3", stdout=out)

    profile = ParameterProfile.objects.get()
    assert profile.name.startswith("hybrid-tuned-") and not profile.active
    source = profile.source
    assert (source["judged_queries"], source["labelled_queries"]) == (0, 3)
    assert source["dataset"] == f"{tiny_dataset} (dev)"
    # each question's relevant memory found first, as evaluate finds it: its ids were mapped right
    assert source["before"]["ndcg@10"] == 1.0 and source["before"]["by_category"]["labelled"]["queries"] == 3
    assert "0 judged queries (0 judgments) + 3 labelled" in out.getvalue()
    assert not Memory.objects.exists()  # the data set was rolled back
