"""Analytics and the index view in the browser: the range changes the page in place (and the URL),
the latency chart's points can be hovered and say their value; an admin looks up a memory's
vectors and their neighbours."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from memories.models import MemoryVector
from search.models import SearchLog
from tests.support.transcripts import DENTIST, GARDEN


def test_an_analyst_reads_the_analytics_of_the_last_24_hours(page, sign_in):
    for ms, ago in ((20.0, 2), (40.0, 2), (300.0, 60)):
        log = SearchLog.objects.create(uid="alice", queries=["the crown"], strategy="hybrid", results=[], latency_ms=ms)
        SearchLog.objects.filter(id=log.id).update(created_at=timezone.now() - timedelta(hours=ago))
    sign_in("analyst")

    page.get_by_role("link", name="Analytics").click()
    expect(page.locator("#analytics-range-shown")).to_contain_text("3 searches")
    page.get_by_label("Time range").select_option("24h")

    expect(page).to_have_url(re.compile(r"period=24h"))
    expect(page.locator("#analytics-range-shown")).to_contain_text("2 searches")
    expect(page.locator("#no-results")).to_contain_text("the crown")
    point = page.locator("#latency-chart circle").first
    point.hover()
    expect(point.locator("title")).to_have_text(re.compile(r"hybrid p50, \d\d:00: 30 ms"))
    expect(page.locator(".chart-legend")).to_contain_text("hybrid p95")
    page.shot("analytics")


def test_an_admin_looks_up_a_memorys_vectors_and_their_neighbours(page, sign_in, remember):
    dentist, garden = remember("alice", DENTIST), remember("alice", GARDEN)
    sign_in("admin")

    page.get_by_role("link", name="Index").click()
    expect(page.locator("#kinds")).to_be_visible()
    page.get_by_label("Memory id").fill(str(dentist.id))
    page.get_by_role("button", name="Look up").click()

    vectors = MemoryVector.objects.filter(memory=dentist).count()
    expect(page.locator("#memory-vectors tbody tr")).to_have_count(vectors)
    expect(page.locator("#neighbour-list")).to_contain_text(f"#{garden.id}")
    page.shot("index")
