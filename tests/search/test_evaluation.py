"""The metrics on hand-computed examples, the evaluate command on a tiny data set, and the metrics
from analysts' judgments."""

import io
import json
import math

import pytest
from django.core.management import CommandError, call_command

from memories.models import LocalVector, Memory
from search.evaluation import aggregate, feedback_metrics, query_metrics, query_variants
from search.models import EvalRun, ParameterProfile
from search.strategies import resolve_params
from tests.support.transcripts import BUDGET, DENTIST


def test_metrics_of_one_ranking_by_hand():
    m = query_metrics(["a", "b", "c", "d", "e", "f"], {"b", "f"})

    assert (m["recall@1"], m["recall@5"], m["recall@10"]) == (0.0, 1.0, 1.0)
    assert m["mrr"] == 0.5
    # DCG = 1/log2(3) + 1/log2(7); ideal = 1/log2(2) + 1/log2(3)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(7)) / (1 + 1 / math.log2(3)))


def test_a_ranking_without_any_relevant_memory_scores_zero():
    assert query_metrics(["a", "b"], {"z"}) == {
        "recall@1": 0.0,
        "recall@5": 0.0,
        "recall@10": 0.0,
        "mrr": 0.0,
        "ndcg@10": 0.0,
    }


def test_aggregate_means_overall_and_per_category():
    rows = [
        ("temporal", query_metrics(["a", "b"], {"a"})),
        ("temporal", query_metrics(["a", "b"], {"b"})),
        ("single-hop", query_metrics(["x"], {"y"})),
    ]

    result = aggregate(rows)

    assert result["queries"] == 3 and result["mrr"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert result["by_category"]["temporal"]["recall@1"] == 0.5
    assert result["by_category"]["single-hop"]["queries"] == 1


@pytest.mark.django_db
def test_evaluate_prints_one_json_object_and_leaves_no_memory_behind(tiny_dataset):
    out = io.StringIO()

    call_command(
        "evaluate", "--dataset", str(tiny_dataset), "--split", "dev", "--strategy", "hybrid", "--json", stdout=out
    )

    result = json.loads(out.getvalue())
    assert set(result) == {"queries", "recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "by_category"}
    assert result["queries"] == 3  # the adversarial question is left out
    assert set(result["by_category"]) == {"single-hop", "temporal"}
    assert result["recall@1"] == 1.0 and result["ndcg@10"] == 1.0
    assert not Memory.objects.exists() and not LocalVector.objects.exists()  # an isolated, rolled-back store
    run = EvalRun.objects.get()
    assert run.strategy == "hybrid" and run.split == "dev" and run.metrics == result


@pytest.mark.django_db
def test_evaluate_an_index_version_uses_its_embedder_and_leaves_the_versions_untouched(tiny_dataset, api, fake_openai):
    from memories.index_versions import index_version_start
    from omi_memory.actors import Actor

    api.post("/memories", {"uid": "alice", "transcript": DENTIST})
    version, _ = index_version_start(
        embedder="openai", dimensions=32, vector_store="local", host="", actor=Actor.command()
    )
    call_command("index_build", "--embedder", "openai", "--dimensions", "32", stdout=io.StringIO())
    held = {ns: LocalVector.objects.filter(namespace=ns).count() for ns in ("ns1", version.namespace)}
    out = io.StringIO()

    call_command(
        "evaluate", "--dataset", str(tiny_dataset), "--strategy", "semantic", "--index-version", version.name,
        "--json", stdout=out,
    )  # fmt: skip

    assert json.loads(out.getvalue())["queries"] == 3
    run = EvalRun.objects.get()
    assert run.embedding_model == "text-embedding-3-large" and run.index_version == version.name
    assert any(r["path"] == "/v1/embeddings" and "crown" in str(r.get("json")) for r in fake_openai.requests)
    assert {ns: LocalVector.objects.filter(namespace=ns).count() for ns in held} == held  # nothing written there
    with pytest.raises(CommandError, match="no index version"):
        call_command("evaluate", "--dataset", str(tiny_dataset), "--index-version", "v999", "--json")


@pytest.mark.django_db
def test_evaluate_all_strategies_gives_one_object_per_strategy(tiny_dataset):
    out = io.StringIO()

    call_command(
        "evaluate", "--dataset", str(tiny_dataset), "--split", "all", "--strategy", "all", "--json", stdout=out
    )

    result = json.loads(out.getvalue())
    assert set(result) == {"semantic", "time_weighted", "multi_query", "hybrid"}
    assert all(r["queries"] == 3 for r in result.values())
    assert EvalRun.objects.count() == 4


@pytest.mark.django_db
def test_feedback_is_stored_and_scored_per_strategy(api, api_for, remember):
    dentist, budget = remember("alice", DENTIST), remember("alice", BUDGET)
    search = api.post("/search", {"uid": "alice", "query": "crown", "k": 2}).json()
    assert [h["memory"]["id"] for h in search["results"]] == [dentist.id, budget.id]

    judged = api.post(
        "/search/feedback",
        {"search_id": search["search_id"], "memory_id": budget.id, "relevant": False, "note": "about money"},
    )
    api.post("/search/feedback", {"search_id": search["search_id"], "memory_id": dentist.id, "relevant": True})
    again = api.post("/search/feedback", {"search_id": search["search_id"], "memory_id": budget.id, "relevant": False})

    assert judged.status_code == 201 and judged.json()["note"] == "about money"
    assert again.status_code == 201 and again.json()["note"] == ""  # a judgment can be changed, not doubled
    metrics = feedback_metrics()["hybrid"]
    assert metrics["judgments"] == 2 and metrics["queries"] == 1
    assert metrics["recall@1"] == 1.0 and metrics["mrr"] == 1.0

    other = api.post("/search/feedback", {"search_id": search["search_id"], "memory_id": 999999, "relevant": True})
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_a_result"
    foreign = api_for("bob").post(
        "/search/feedback", {"search_id": search["search_id"], "memory_id": dentist.id, "relevant": True}
    )
    assert foreign.status_code == 404


def test_multi_query_asks_again_with_the_questions_content_words_only():
    question = "When did Caroline's team go to the 2022 support group?"

    assert query_variants(question) == [question, "Caroline's team go 2022 support group"]


@pytest.mark.django_db
def test_evaluate_with_a_profile_scores_its_parameters_and_records_it(tiny_dataset):

    month_only = {"lexical_weight": 0, "exchanges_weight": 0, "snippets_weight": 0, "windows_weight": 0}
    profile = ParameterProfile.objects.create(
        name="month-only", strategy="hybrid", params=resolve_params("hybrid", {**month_only, "month_weight": 1})
    )
    args = ["evaluate", "--dataset", str(tiny_dataset), "--split", "dev", "--json"]

    with_profile = json.loads(_output(*args, "--profile", "month-only"))  # --strategy all: the profile's
    defaults = json.loads(_output(*args, "--strategy", "hybrid"))

    # no question names a month: by that signal alone every memory ties, and the first made ranks first
    assert with_profile["recall@1"] < defaults["recall@1"] == 1.0
    profiled, default = EvalRun.objects.order_by("id")
    assert (profiled.strategy, profiled.profile, profiled.params) == ("hybrid", "month-only", profile.params)
    assert default.profile == "" and default.params == resolve_params("hybrid")


@pytest.mark.django_db
def test_evaluate_uses_and_records_the_active_profile_unless_told_the_defaults(tiny_dataset):

    ParameterProfile.objects.create(
        name="rrf-wide", strategy="hybrid", params=resolve_params("hybrid", {"rrf_k": 60}), active=True
    )
    args = ["evaluate", "--dataset", str(tiny_dataset), "--split", "dev", "--strategy", "hybrid", "--json"]

    _output(*args)
    _output(*args, "--defaults")

    active, defaults = EvalRun.objects.order_by("id")
    assert active.profile == "rrf-wide" and active.params["rrf_k"] == 60
    assert defaults.profile == "" and defaults.params["rrf_k"] == 10


@pytest.mark.django_db
def test_evaluate_refuses_a_profile_of_another_strategy_or_none_by_that_name(tiny_dataset):

    ParameterProfile.objects.create(name="fitted", strategy="hybrid", params=resolve_params("hybrid"))
    args = ["evaluate", "--dataset", str(tiny_dataset), "--split", "dev"]

    with pytest.raises(CommandError, match="profile fitted is for strategy hybrid, not semantic"):
        _output(*args, "--strategy", "semantic", "--profile", "fitted")
    with pytest.raises(CommandError, match="no parameter profile named 'nope'"):
        _output(*args, "--profile", "nope")
    assert not EvalRun.objects.exists()


def _output(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
