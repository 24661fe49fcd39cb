"""Sign-in, the memory list (filters as you type, URL state, back button) and a memory's page."""

import re

from playwright.sync_api import expect

from memories.models import Memory

from .conftest import PASSWORD


def _memory(uid: str, title: str, transcript: str, **fields) -> Memory:
    return Memory.objects.create(uid=uid, title=title, transcript=transcript, status="indexed", **fields)


def test_sign_in_rejects_a_wrong_password_then_lands_on_the_memory_list(page, user):
    account = user("admin", username="operator")

    page.goto("/memories/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/memories/$"))
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("p.error")).to_contain_text("didn't match")
    page.shot("wrong-password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/memories/$"))
    expect(page.get_by_role("heading", name="Memories")).to_be_visible()
    expect(page.locator("header .whoami")).to_contain_text("operator · admin")


def test_memory_list_filters_as_you_type_and_the_url_reload_and_back_button_keep_the_filters(page, sign_in):
    dentist = _memory("alice", "Cracked crown at the dentist", "the crown on my molar is cracked")
    garden = _memory("alice", "Raised beds for the vegetable garden", "tomatoes on the south side")
    budget = _memory("ben", "Monthly budget review", "the grocery bill was six hundred dollars")
    sign_in("admin")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(3)

    # fill() is one input event, so one debounced request and one history entry per field (typing
    # key by key on a slow machine could push "ali", "alic", ... and move the back button's target).
    page.locator("#memory-filters [name=uid]").fill("alice")
    expect(rows).to_have_count(2)
    expect(page.locator(f"tr#memory-{budget.id}")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]uid=alice(&|$)"))

    page.locator("#memory-filters [name=q]").fill("garden")
    expect(rows).to_have_count(1)
    expect(page.locator(f"tr#memory-{garden.id} span.memory-title")).to_have_text(garden.title)
    expect(page).to_have_url(re.compile(r"[?&]q=garden(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]uid=alice(&|$)"))

    page.reload()
    expect(rows).to_have_count(1)
    expect(page.locator(f"tr#memory-{garden.id}")).to_be_visible()
    expect(page.locator("#memory-filters [name=q]")).to_have_value("garden")
    expect(page.locator("#memory-filters [name=uid]")).to_have_value("alice")
    page.shot("filtered")

    page.go_back()
    expect(page).not_to_have_url(re.compile(r"q=garden"))
    expect(rows).to_have_count(2)
    expect(page.locator(f"tr#memory-{dentist.id}")).to_be_visible()
    expect(page.locator(f"tr#memory-{garden.id}")).to_be_visible()


def test_memory_list_sorts_by_title_and_pages_without_losing_the_filter(page, sign_in):
    for i in range(27):
        _memory("carol", f"Note {i:02d}", f"note number {i}")
    _memory("dave", "Someone else's note", "not carol's")
    sign_in("admin")

    page.locator("#memory-filters [name=uid]").fill("carol")
    expect(page.locator("#results")).to_contain_text("27 memories · page 1 of 2")
    page.locator("#results th a", has_text="Title").click()
    titles = page.locator("#results span.memory-title")
    expect(titles.first).to_have_text("Note 00")
    expect(page).to_have_url(re.compile(r"[?&]sort=title(&|$)"))

    page.locator("#results nav.pagination").get_by_role("link", name="Next →").click()
    expect(page.locator("#results")).to_contain_text("page 2 of 2")
    expect(titles).to_have_text(["Note 25", "Note 26"])
    expect(page).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]uid=carol(&|$)"))


def test_analyst_sees_a_memory_without_delete_or_reprocess_buttons(page, sign_in):
    memory = _memory("alice", "Cracked crown at the dentist", "the crown on my molar is cracked")
    sign_in("analyst")

    page.locator(f"tr#memory-{memory.id} a").click()
    expect(page).to_have_url(re.compile(rf"/memories/{memory.id}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(memory.title)
    expect(page.locator("#memory-status-badge")).to_have_text("indexed")
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    expect(page.get_by_role("button", name="Reprocess")).to_have_count(0)
    expect(page.locator("header .whoami")).to_contain_text("analyst")


def test_admin_sees_delete_and_reprocess_on_a_memory_page(page, sign_in):
    memory = _memory("alice", "Cracked crown at the dentist", "the crown on my molar is cracked")
    sign_in("admin")

    page.goto(f"/memories/{memory.id}/")
    expect(page.get_by_role("button", name="Delete")).to_be_visible()
    expect(page.get_by_role("button", name="Reprocess")).to_be_visible()


def test_an_admin_reconciles_the_vectors_from_the_pipeline_page_and_sees_what_was_repaired(page, sign_in):
    from memories.models import LocalVector
    from tests.support.memories import indexed_memory
    from tests.support.transcripts import DENTIST

    memory = indexed_memory("alice", DENTIST)
    LocalVector.objects.filter(record_id=memory.vector_id).delete()
    sign_in("admin")

    page.goto("/pipeline/")
    expect(page.locator("#reconciliation")).to_contain_text("No reconciliation yet")
    page.get_by_label("and repair").check()
    page.get_by_role("button", name="Reconcile now").click()
    expect(page.locator("#reconcile-last")).to_contain_text("dashboard (admin), repairing", timeout=20_000)
    expect(page.locator("#reconcile-missing .count")).to_have_text("1")
    expect(page.locator("#reconcile-repaired .count")).to_have_text("1 · 0")
    expect(page.locator("#reconciliation table")).to_contain_text(memory.vector_id)
    page.shot("reconciled")
    assert LocalVector.objects.filter(record_id=memory.vector_id).exists()
    assert not page.problems, page.problems
