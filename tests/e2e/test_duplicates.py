"""Duplicates: two near-identical memories raise a pair; an admin merges it from the queue."""

import re

from playwright.sync_api import expect

from memories.models import Memory
from search.models import DuplicatePair
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
    first, second = sorted([first, second], key=lambda memory: memory.id)  # the card shows the older on the left
    expect(pair.locator(f'a[href="/memories/{first.id}/"]')).to_have_count(1)
    expect(pair.locator(f'a[href="/memories/{second.id}/"]')).to_have_count(1)
    expect(pair.locator(f'a[href="/memories/{other.id}/"]')).to_have_count(0)
    page.shot("queue")

    pair_id = pair.get_attribute("id")
    page.evaluate("window.stillTheSamePage = true")
    pair.get_by_role("button", name="Keep left, merge right").click()
    card = page.locator(f"article#{pair_id}")
    expect(card.get_by_text(f"Merge #{second.id} into #{first.id}?")).to_be_visible()  # nothing merged yet
    card.get_by_role("link", name="Cancel").click()
    expect(card.get_by_role("button", name="Confirm merge")).to_have_count(0)
    assert Memory.objects.get(id=second.id).status == Memory.Status.INDEXED
    card.get_by_role("button", name="Keep left, merge right").click()
    expect(card.get_by_role("button", name="Confirm merge")).to_be_visible()
    page.shot("confirm")
    card.get_by_role("button", name="Confirm merge").click()
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

    # The merged-away memory links to the kept one; unmerging brings it back, into search too.
    page.goto(f"/memories/{gone_id}/")
    expect(page.locator("#merged-into")).to_contain_text("Merged into")
    page.locator("#merged-into").get_by_role("link", name="Duplicates").click()
    merged = page.locator(f"article#{pair_id}")
    merged.get_by_role("button", name="Unmerge").click()
    expect(merged.locator(".row .badge").first).to_have_text("open")
    expect(merged.get_by_role("button", name="Keep left, merge right")).to_be_visible()
    page.shot("unmerged")
    page.goto(f"/memories/{kept_id}/")
    expect(page.locator("#merged-memories")).to_have_count(0)
    page.goto("/search/?uid=erin&query=dentist+next+Tuesday")
    expect(page.locator(f"#results a[href='/memories/{gone_id}/']").first).to_be_visible()


def test_the_queue_survives_back_and_forward_after_an_htmx_navigation(page, sign_in):
    """Paging the queue swaps #results and pushes the URL; back and forward then show whole pages,
    whether the browser brings one back from its cache (after leaving for another page) or htmx
    asks the server for it (its own snapshot of the page gone)."""
    notes = [
        Memory.objects.create(uid="fay", title=f"Note {i:02d}", transcript=f"note {i}", status="indexed")
        for i in range(48)
    ]
    for i in range(0, 48, 2):
        DuplicatePair.objects.create(uid="fay", memory_a=notes[i], memory_b=notes[i + 1], similarity=0.999 - i / 1000)
    sign_in("analyst")
    pairs = page.locator("#results article.pair")
    whole_page = page.locator("header.topbar nav")
    pager = page.locator("#results nav.pagination")

    page.get_by_role("link", name="Duplicates").click()
    expect(page.locator("#pair-count")).to_have_text("24 pairs, open.")
    page.evaluate("window.stillTheSamePage = true")
    pager.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"/duplicates/\?page=2$"))
    expect(pairs).to_have_count(4)
    assert page.evaluate("window.stillTheSamePage") is True, "paging reloaded the page"

    # Leave for another page and come back: the browser, not htmx, brings the queue's page back
    # (from its cache, where the same URL's fragment is kept too).
    page.get_by_role("link", name="Memories").click()
    expect(page.get_by_role("heading", name="Memories")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?page=2$"))
    expect(whole_page).to_be_visible()
    expect(pairs).to_have_count(4)
    page.shot("after-leaving")

    # htmx keeps snapshots of the last few pages in sessionStorage; without one (more pages
    # visited since, or storage full) it asks the server for the page as a history restore.
    pager.get_by_role("link", name="← Previous").click()
    expect(pairs).to_have_count(20)
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?page=2$"))
    expect(pairs).to_have_count(4)
    expect(whole_page).to_be_visible()
    expect(page.get_by_role("heading", name="Duplicates")).to_be_visible()
    page.shot("back")

    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    page.go_forward()
    expect(page).to_have_url(re.compile(r"\?page=1$"))
    expect(pairs).to_have_count(20)
    expect(whole_page).to_be_visible()
    expect(page.locator("form.filters select[name=status]")).to_have_value("open")
