"""Duplicates: two near-identical memories raise a pair; an admin merges it from the queue."""

from playwright.sync_api import expect

from memories.models import Memory
from tests.support.transcripts import DENTIST, GARDEN


def test_admin_merges_a_duplicate_pair_and_the_merged_memory_leaves_the_list(page, sign_in, remember):
    first = remember("erin", DENTIST)
    second = remember("erin", DENTIST.replace("next Tuesday", "on Tuesday"))
    other = remember("erin", GARDEN)
    sign_in("admin")

    page.get_by_role("link", name="Duplicates").click()
    scan = page.locator("form#scan")
    scan.get_by_label("Scan user").fill("erin")
    scan.get_by_role("button", name="Scan for duplicates").click()
    pairs = page.locator("#results article.pair")
    expect(pairs).to_have_count(1)
    expect(page.locator("#pair-count")).to_have_text("1 pair for erin, open.")
    pair = pairs.first
    expect(pair.locator(".badge.open")).to_have_text("open")
    expect(pair.locator(f'a[href="/memories/{first.id}/"]')).to_have_count(1)
    expect(pair.locator(f'a[href="/memories/{second.id}/"]')).to_have_count(1)
    expect(pair.locator(f'a[href="/memories/{other.id}/"]')).to_have_count(0)
    page.shot("queue")

    pair_id = pair.get_attribute("id")
    page.evaluate("window.stillTheSamePage = true")
    pair.get_by_role("button", name="Keep left, merge right").click()
    card = page.locator(f"article#{pair_id}")
    expect(card.locator(".badge.merged").first).to_be_visible()
    expect(card.locator(".row .badge").first).to_have_text("merged")
    expect(card.get_by_role("button", name="Keep left, merge right")).to_have_count(0)
    kept = card.locator(".memory.kept")
    expect(kept).to_have_count(1)
    assert page.evaluate("window.stillTheSamePage") is True, "the merge reloaded the page"
    expect(page.locator("#pair-count")).to_have_text("0 pairs for erin, open.")  # the card stays, the count follows
    page.shot("merged")

    kept_id = int(kept.locator("a").first.get_attribute("href").strip("/").split("/")[-1])
    gone_id = first.id if kept_id == second.id else second.id
    assert Memory.objects.get(id=gone_id).status == Memory.Status.DELETED

    page.goto("/memories/?uid=erin")
    expect(page.locator("#results tbody tr")).to_have_count(2)
    expect(page.locator(f"tr#memory-{kept_id}")).to_be_visible()
    expect(page.locator(f"tr#memory-{gone_id}")).to_have_count(0)
