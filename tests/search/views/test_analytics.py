"""The analytics page: the search log over a time range."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from memories.models import Memory
from search.models import RelevanceFeedback, SearchLog
from tests.support.htmx import assert_whole_page_or_fragment

pytestmark = pytest.mark.django_db


def logged(query: str, *, scores=(0.8,), strategy="hybrid", latency=10.0, ago=timedelta(hours=1), uid="alice"):
    memories = [Memory.objects.create(uid=uid, transcript=f"memory {i}") for i in range(len(scores))]
    log = SearchLog.objects.create(
        uid=uid,
        queries=[query],
        strategy=strategy,
        # marked weak as a search with a relevance floor of 0.5 marks them
        results=[{"memory_id": m.id, "score": s, "weak": s < 0.5} for m, s in zip(memories, scores)],
        latency_ms=latency,
    )
    SearchLog.objects.filter(id=log.id).update(created_at=timezone.now() - ago)
    return log, memories


def table(page: str, table_id: str) -> list[list[str]]:
    """The cells (tags stripped) of each body row of a table."""
    body = page[page.index(f'id="{table_id}"') :]
    body = body[body.index("<tbody>") : body.index("</tbody>")]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_only_dashboard_users_see_the_page_and_the_nav_links_it(client, signed_in):
    assert client.get("/analytics/").status_code == 302
    assert signed_in(None).get("/analytics/").status_code == 403
    page = signed_in("analyst").get("/analytics/").content.decode()
    assert 'href="/analytics/"' in page and "No searches in this time range." in page


def test_top_queries_count_searches_of_the_range_whatever_their_case(signed_in):
    for query in ("dentist crown", "Dentist Crown", "dentist crown"):
        logged(query)
    logged("garden", uid="bob")
    logged("budget", ago=timedelta(days=10))  # outside the last 7 days

    client = signed_in("analyst")
    week = client.get("/analytics/").content.decode()
    month = client.get("/analytics/", {"period": "30d"}).content.decode()

    assert [row[:3] for row in table(week, "top-queries")] == [["dentist crown", "3", "1"], ["garden", "1", "1"]]
    assert "budget" in [row[0] for row in table(month, "top-queries")]
    assert "4 searches from" in week and "5 searches from" in month


def test_queries_that_found_nothing_or_only_weak_results_are_listed_apart(signed_in, settings):
    settings.SEARCH_RELEVANCE_FLOOR = 0.5
    logged("xyzzy qwerty", scores=())
    logged("xyzzy qwerty", scores=())
    logged("the crown", scores=(0.35, 0.3))
    logged("dentist", scores=(0.9,))

    page = signed_in("analyst").get("/analytics/").content.decode()

    assert [row[:2] for row in table(page, "no-results")] == [["xyzzy qwerty", "2"]]
    assert [(row[0], row[3]) for row in table(page, "weak-results")] == [("the crown", "0.350")]
    assert "scored under 0.5" in page


def test_latency_percentiles_per_strategy_are_in_the_table_and_on_the_chart_hover(signed_in):
    for ms in range(10, 101, 10):  # 10, 20, ..., 100 ms
        logged("q", strategy="hybrid", latency=float(ms))
    logged("q", strategy="semantic", latency=5.0, ago=timedelta(hours=30))

    page = signed_in("analyst").get("/analytics/", {"period": "24h"}).content.decode()

    assert table(page, "strategies") == [["hybrid", "10", "55.0", "95.5", "0", "0", "0"]]
    assert "semantic" not in page  # 30 hours ago is outside the last 24 hours
    chart = page[page.index('id="latency-chart"') : page.index("</svg>", page.index('id="latency-chart"'))]
    titles = re.findall(r"<title>([^<]*)</title>", chart)
    assert any(re.fullmatch(r"hybrid p50, \d\d:00: 55 ms", t) for t in titles)
    assert any(re.fullmatch(r"hybrid p95, \d\d:00: 95.5 ms", t) for t in titles)
    assert "ms</text>" in chart and "hour (UTC)</text>" in chart  # the axes say what they show
    assert "hybrid p95</li>" in page  # the legend


def test_judgment_coverage_counts_searches_and_results_judged(signed_in):
    judged, memories = logged("dentist", scores=(0.9, 0.8, 0.7))
    logged("garden", scores=(0.6, 0.5))
    RelevanceFeedback.objects.create(search=judged, memory=memories[0], relevant=True)
    RelevanceFeedback.objects.create(search=judged, memory=memories[1], relevant=False)

    page = signed_in("analyst").get("/analytics/").content.decode()

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "1 of 2 searches judged (50.0%)" in text
    assert "2 of 5 results shown judged (40.0%)" in text


def test_a_custom_range_reads_whole_days_and_a_reversed_one_says_so(signed_in):
    log, _ = logged("february", ago=timedelta(0))
    SearchLog.objects.filter(id=log.id).update(created_at=datetime(2026, 2, 3, 23, 59, tzinfo=UTC))
    client = signed_in("analyst")

    page = client.get("/analytics/", {"period": "custom", "starts": "2026-02-01", "ends": "2026-02-03"})
    reversed_ = client.get("/analytics/", {"period": "custom", "starts": "2026-02-03", "ends": "2026-02-01"})

    assert [row[0] for row in table(page.content.decode(), "top-queries")] == ["february"]
    assert 'role="alert"' in reversed_.content.decode() and "Showing the last 7 days." in reversed_.content.decode()


def test_htmx_gets_the_results_alone(signed_in):
    assert_whole_page_or_fragment(signed_in("analyst"), "/analytics/?period=24h", fragment='<div id="analytics">')
