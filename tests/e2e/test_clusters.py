"""Clusters: an admin runs a clustering, watches it finish, reads the map and a cluster."""

import re

from playwright.sync_api import expect

from search.analysis.clusters import cluster_run_execute
from search.models import ClusterRun
from tests.support.transcripts import BUDGET, GARDEN

TAXES = """Ben: The tax return is due next month and we still owe the accountant her fee.
Maya: I put the receipts for the deductions in a folder, and the savings account interest statement.
Ben: If we get a refund we should pay down the credit card balance first."""

ORCHARD = """Sam: The apple trees in the orchard need pruning before the buds open.
Alice: And I want to plant strawberries and lettuce in the new raised bed next to the compost heap.
Sam: Mulch the roots and water the seedlings every morning while it is dry."""


def test_admin_runs_a_clustering_and_opens_a_cluster(page, sign_in, remember):
    money = [remember("bob", BUDGET), remember("bob", TAXES)]
    garden = [remember("bob", GARDEN), remember("bob", ORCHARD)]
    sign_in("admin")

    page.get_by_role("link", name="Clusters").click()
    form = page.locator("#cluster-form")
    form.locator("select[name=uid]").select_option("bob")
    form.get_by_label("k", exact=True).fill("2")
    page.shot("form")
    form.get_by_role("button", name="Run").click()

    expect(page).to_have_url(re.compile(r"/clusters/\d+/$"))
    expect(page.locator("#cluster-run .badge.done")).to_be_visible(timeout=30_000)
    circles = page.locator("svg#cluster-map circle")
    expect(circles).to_have_count(4)
    for memory in money + garden:
        expect(page.locator(f"svg#cluster-map circle#point-{memory.id}")).to_have_count(1)

    cards = page.locator("section.cluster-card")
    expect(cards).to_have_count(2)
    garden_card = cards.filter(has=page.locator(f'a[href="/memories/{garden[0].id}/"]'))
    expect(garden_card.locator(f'a[href="/memories/{garden[1].id}/"]')).to_have_count(1)
    expect(garden_card.locator("li")).to_have_count(2)
    expect(garden_card).to_contain_text("2 memories")
    page.shot("run")

    garden_card.locator(f'a[href="/memories/{garden[1].id}/"]').click()
    expect(page).to_have_url(re.compile(rf"/memories/{garden[1].id}/$"))
    expect(page.locator("#memory-status-badge")).to_have_text("indexed")
    expect(page.locator("pre.transcript")).to_contain_text("apple trees in the orchard")

    page.go_back()
    page.get_by_role("link", name="← All cluster runs").click()
    expect(page.locator("#cluster-runs tbody tr")).to_have_count(1)
    expect(page.locator("#cluster-runs tbody tr .badge")).to_have_text("done")

    # A run that no worker has picked up yet: its page follows it live, without a reload.
    waiting = ClusterRun.objects.create(uid="bob", k_requested=2)
    page.goto(f"/clusters/{waiting.id}/")
    expect(page.locator("#cluster-run .badge")).to_have_text("queued")
    expect(page.locator("#cluster-run")).to_contain_text("waiting for a worker")
    page.evaluate("window.stillTheSamePage = true")
    cluster_run_execute(run_id=waiting.id)
    expect(page.locator("#cluster-run .badge.done")).to_be_visible()
    expect(circles).to_have_count(4)
    assert page.evaluate("window.stillTheSamePage") is True, "the page reloaded to show the result"


def test_analyst_sees_the_clusters_page_but_no_run_form(page, sign_in):
    sign_in("analyst")
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("heading", name="Clusters", exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text("No clustering has been run yet.")
    expect(page.locator("#cluster-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Run")).to_have_count(0)
