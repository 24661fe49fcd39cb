"""The evaluation page: stored runs on a labelled set, and the metrics of analysts' judgments."""

import re

import pytest

from memories.models import AuditEvent
from search.models import EvalRun, ParameterProfile, RelevanceFeedback, SearchLog
from search.strategies import resolve_params
from tests.support.htmx import assert_whole_page_or_fragment
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db


def run(strategy: str, split: str = "dev", ndcg: float = 0.5, recall5: float = 0.6, **extra) -> EvalRun:
    metrics = {"queries": 120, "recall@1": 0.25, "recall@5": recall5, "recall@10": 0.75, "mrr": 0.4, "ndcg@10": ndcg}
    return EvalRun.objects.create(
        dataset="../shared/data/locomo",
        split=split,
        strategy=strategy,
        metrics=metrics,
        embedding_model="all-MiniLM-L6-v2",
        seconds=12.34,
        **extra,
    )


def bars(page: str) -> list[tuple[str, str, str]]:
    """(group, series, value) of every bar drawn."""
    return re.findall(
        r'<g class="chart-bar" data-group="([^"]+)" data-series="([^"]+)">\s*<title>[^<]*</title>'
        r"\s*<rect[^>]*>\s*</rect>\s*<text[^>]*>([\d.]+)</text>",
        page,
    )


def test_only_dashboard_users_see_the_page(client, signed_in):
    assert client.get("/evaluation/").status_code == 302
    assert signed_in(None).get("/evaluation/").status_code == 403
    assert signed_in("admin", username="boss").get("/evaluation/").status_code == 200


def test_an_empty_page_says_how_to_fill_it(signed_in):
    page = signed_in("analyst").get("/evaluation/").content.decode()

    assert "No runs yet" in page and "python manage.py evaluate --dataset" in page
    assert "No judgments yet" in page
    assert "<svg" not in page


def test_runs_are_listed_newest_first_with_their_metrics(signed_in):
    old = run("semantic", ndcg=0.1)
    new = run("hybrid", ndcg=0.6543, recall5=0.7777)

    page = signed_in("analyst").get("/evaluation/").content.decode()

    assert page.index(f'id="eval-run-{new.id}"') < page.index(f'id="eval-run-{old.id}"')
    row = page[page.index(f'id="eval-run-{new.id}"') :]
    row = row[: row.index("</tr>")]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells == ["120", "0.250", "0.778", "0.750", "0.400", "0.654", "12.3"]
    assert ">hybrid<" in row and ">dev<" in row and "../shared/data/locomo" in row


def test_the_chart_has_a_bar_per_metric_for_the_latest_run_of_each_strategy_and_split(signed_in):
    run("hybrid", ndcg=0.2)
    run("hybrid", ndcg=0.65)  # newer: replaces the first in the chart
    run("semantic", ndcg=0.55, recall5=0.7)
    run("semantic", split="holdout", ndcg=0.5)

    page = signed_in("analyst").get("/evaluation/").content.decode()

    drawn = bars(page)
    assert ("hybrid · dev", "nDCG@10", "0.650") in drawn and ("hybrid · dev", "R@5", "0.600") in drawn
    assert ("semantic · dev", "nDCG@10", "0.550") in drawn and ("semantic · dev", "R@5", "0.700") in drawn
    assert ("semantic · holdout", "nDCG@10", "0.500") in drawn
    assert len(drawn) == 6  # three (strategy, split) pairs, two metrics each
    widths = dict(
        ((g, s), float(w))
        for g, s, w in re.findall(
            r'data-group="([^"]+)" data-series="([^"]+)">\s*<title>[^<]*</title>\s*<rect[^>]*width="([\d.]+)"', page
        )
    )
    assert widths[("hybrid · dev", "nDCG@10")] > widths[("semantic · dev", "nDCG@10")]
    assert "<title>hybrid · dev: nDCG@10 0.650</title>" in page
    assert ">nDCG@10</text>" in page and ">R@5</text>" in page  # the legend
    chart = re.search(r'<svg id="runs-chart".*?</svg>', page, re.S).group(0)
    assert ">score (0 to 1)</text>" in chart and ">strategy · split</text>" in chart  # the axes' titles
    ticks = set(re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', chart))
    assert {"0", "0.25", "0.5", "0.75", "1", "hybrid · dev", "semantic · holdout"} <= ticks


def test_runs_are_paginated_and_a_page_comes_alone_to_htmx(signed_in):
    for i in range(30):
        run("semantic", ndcg=i / 100)
    analyst = signed_in("analyst")

    first = analyst.get("/evaluation/").content.decode()
    second = analyst.get("/evaluation/?page=2", headers={"HX-Request": "true"}).content.decode()

    assert first.count('id="eval-run-') == 25 and "page 1 of 2" in first
    assert second.count('id="eval-run-') == 5 and "<html" not in second and second.lstrip().startswith('<div id="runs"')
    assert 'href="?page=2"' in first and 'hx-target="#runs"' in first and ">older →</a>" in first
    assert 'href="?page=1"' in second and ">← newer</a>" in second
    assert_whole_page_or_fragment(analyst, "/evaluation/?page=2", fragment='<div id="runs"')


def test_judgments_are_scored_and_counted_per_strategy(signed_in, remember):
    dentist, budget = remember("alice", DENTIST), remember("alice", BUDGET)
    analyst = signed_in("analyst")
    for strategy, query in [("hybrid", "crown"), ("semantic", "crown"), ("semantic", "mortgage")]:
        analyst.get("/search/", {"uid": "alice", "query": query, "strategy": strategy, "k": "2"})
    hybrid, semantic_crown, semantic_mortgage = SearchLog.objects.order_by("id")
    assert [r["memory_id"] for r in hybrid.results] == [dentist.id, budget.id]
    for log, memory, relevant in [
        (hybrid, dentist, "1"),
        (hybrid, budget, "0"),
        (semantic_crown, budget, "1"),
        (semantic_mortgage, dentist, "0"),
    ]:
        analyst.post("/search/judge/", {"search_id": log.id, "memory_id": memory.id, "relevant": relevant})
    assert RelevanceFeedback.objects.count() == 4

    page = analyst.get("/evaluation/").content.decode()

    def row(strategy):
        html = page[page.index(f'id="judged-{strategy}"') :]
        return re.findall(r'<td class="num">([^<]*)</td>', html[: html.index("</tr>")])

    # judgments, judged searches, scored searches, R@1, R@5, R@10, MRR, nDCG@10
    assert row("hybrid") == ["2", "1", "1", "1.000", "1.000", "1.000", "1.000", "1.000"]
    semantic_rank = [r["memory_id"] for r in semantic_crown.results].index(budget.id)  # budget judged relevant
    assert row("semantic")[:3] == ["2", "2", "1"]
    assert row("semantic")[6] == f"{1 / (semantic_rank + 1):.3f}"  # MRR
    assert ("hybrid (1 search)", "nDCG@10", "1.000") in bars(page)
    assert {g for g, _, _ in bars(page)} == {"hybrid (1 search)", "semantic (1 search)"}
    hybrid_row = page[page.index('id="judged-hybrid"') :]
    assert "based on 1 search: not reliable" in hybrid_row[: hybrid_row.index("</tr>")]


def test_judged_metrics_from_30_searches_or_more_carry_no_warning(signed_in):
    from memories.models import Memory

    memory = Memory.objects.create(uid="alice", transcript="the crown")
    for n in range(30):
        log = SearchLog.objects.create(
            uid="alice",
            queries=[f"q{n}"],
            strategy="hybrid",
            results=[{"memory_id": memory.id, "score": 0.9}],
            latency_ms=1,
        )
        RelevanceFeedback.objects.create(search=log, memory=memory, relevant=True)

    page = signed_in("analyst").get("/evaluation/").content.decode()

    row = page[page.index('id="judged-hybrid"') :]
    assert "not reliable" not in row[: row.index("</tr>")] and ">30<" in row[: row.index("</tr>")]


def test_each_strategy_and_split_has_a_trend_of_its_runs_naming_what_each_used(signed_in):
    run("hybrid", ndcg=0.4)
    run("hybrid", ndcg=0.5, profile="tuned-1")
    newest = run("hybrid", ndcg=0.6, profile="tuned-2", index_version="v2")
    run("semantic", split="holdout", ndcg=0.3)

    page = signed_in("analyst").get("/evaluation/").content.decode()

    trend = re.search(r'<figure id="trend-hybrid-dev">.*?</figure>', page, re.S).group(0)
    # two lines (nDCG@10 and R@5) through the three runs, oldest on the left
    assert trend.count("<polyline") == 2
    ndcg = re.findall(r"<title>nDCG@10, [^<]*: ([\d.]+)[^<]*</title>", trend)
    assert ndcg == ["0.4", "0.5", "0.6"]
    assert "(default parameters)</title>" in trend and "(profile tuned-1)</title>" in trend
    assert "(profile tuned-2, index v2)</title>" in trend
    assert ">run (UTC)</text>" in trend and ">score</text>" in trend  # the axes' titles
    assert 'id="trend-semantic-holdout"' in page and 'id="trend-semantic-dev"' not in page
    row = page[page.index(f'id="eval-run-{newest.id}"') :]
    row = row[: row.index("</tr>")]
    assert "<td>tuned-2</td>" in row and "<td>v2</td>" in row


def profile(name: str, **fields):
    source = {
        "kind": "tune",
        "folds": 5,
        "judged_queries": 42,
        "judgments": 97,
        "labelled_queries": 0,
        "before": {"ndcg@10": 0.61, "recall@5": 0.8},
        "after": {"ndcg@10": 0.7123, "recall@5": 0.85},
    }
    return ParameterProfile.objects.create(
        name=name, strategy="hybrid", params=resolve_params("hybrid", {"rrf_k": 20}), source=source, **fields
    )


def test_profiles_show_where_they_came_from_and_only_admins_get_the_buttons(signed_in):
    fitted = profile("fitted")

    analyst_page = signed_in("analyst").get("/evaluation/").content.decode()
    admin_page = signed_in("admin", username="boss").get("/evaluation/").content.decode()

    row = analyst_page[analyst_page.index(f'id="profile-{fitted.id}"') :]
    row = row[: row.index("</tr>")]
    assert "42 judged queries (97 judgments), 5 folds" in row and "0.610 → 0.712" in row and "0.800 → 0.850" in row
    assert "rrf_k 20" in row and "inactive" in row
    assert (
        row.index("lexical_weight 0.25") < row.index("month_weight") < row.index("rrf_k")
    )  # as the strategy states them
    assert "Activate</button>" not in analyst_page and "Activate</button>" in admin_page


def test_an_admin_activates_a_profile_one_per_strategy_and_deactivates_it(signed_in):
    first, second = profile("first"), profile("second")
    admin = signed_in("admin", username="boss")

    assert signed_in("analyst").post(f"/evaluation/profiles/{first.id}/activate/").status_code == 403
    response = admin.post(f"/evaluation/profiles/{first.id}/activate/", follow=True)
    assert "Profile first is active" in response.content.decode()
    admin.post(f"/evaluation/profiles/{second.id}/activate/")
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.active, second.active) == (False, True)
    assert admin.get(f"/evaluation/profiles/{second.id}/deactivate/").status_code == 405
    admin.post(f"/evaluation/profiles/{second.id}/deactivate/")
    second.refresh_from_db()
    assert not second.active
    events = AuditEvent.objects.order_by("id")
    assert [(e.action, e.actor_name, e.details["name"]) for e in events] == [
        ("profile.activate", "boss", "first"),
        ("profile.activate", "boss", "second"),
        ("profile.deactivate", "boss", "second"),
    ]
    assert events[1].details["previous"] == "first"
    assert admin.post("/evaluation/profiles/999999/activate/").status_code == 404


def test_the_search_page_says_which_profile_ranked_its_results(signed_in, remember):
    remember("alice", DENTIST)
    profile("fitted", active=True)

    page = signed_in("analyst").get("/search/?uid=alice&query=crown").content.decode()

    assert "by hybrid with profile <code>fitted</code> in" in page
    assert SearchLog.objects.get().params["profile"] == "fitted"
