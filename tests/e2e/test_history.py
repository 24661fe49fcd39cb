"""Back, forward and reload on the pages that keep their state in the URL (the memory list, search,
duplicates): the form's fields, the URL and the rows always agree, and a change made after going
back keeps the other filters."""

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from memories.models import Memory
from tests.support.transcripts import BUDGET, DENTIST, GARDEN


def _agree(page, form, **fields):
    """The form's fields and the URL say the same `fields`."""
    for name, value in fields.items():
        expect(form.locator(f"[name={name}]")).to_have_value(value)
    in_url = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
    assert {name: in_url.get(name, [""])[-1] for name in fields} == fields, page.url


def _memory(uid: str, title: str) -> Memory:
    return Memory.objects.create(uid=uid, title=title, transcript=title.lower(), status="indexed")


def _three_steps_on_the_memory_list(page, sign_in):
    """Alice's and Ben's memories; on the list, as admin: alice's, then those with "garden", then
    sorted by title (three history entries). Returns the form, the titles shown and the memories."""
    crown = _memory("alice", "Cracked crown at the dentist")
    garden = _memory("alice", "Raised beds for the garden")
    _memory("ben", "Monthly budget review")
    sign_in("admin")
    form = page.locator("#memory-filters")
    titles = page.locator("#results span.memory-title")
    expect(titles).to_have_count(3)
    form.locator("[name=uid]").fill("alice")
    expect(titles).to_have_count(2)
    form.locator("[name=q]").fill("garden")
    expect(titles).to_have_text([garden.title])
    page.locator("#results th a", has_text="Title").click()
    expect(page).to_have_url(re.compile(r"[?&]sort=title(&|$)"))
    return form, titles, crown, garden


def test_memory_list_back_forward_and_reload_keep_fields_url_and_rows_together(page, sign_in):
    form, titles, crown, garden = _three_steps_on_the_memory_list(page, sign_in)

    page.go_back()
    expect(page).not_to_have_url(re.compile(r"sort=title"))
    _agree(page, form, uid="alice", q="garden")
    expect(titles).to_have_text([garden.title])
    page.go_back()
    _agree(page, form, uid="alice", q="")
    expect(titles).to_have_count(2)
    page.go_forward()
    _agree(page, form, uid="alice", q="garden")
    expect(titles).to_have_text([garden.title])
    page.reload()
    _agree(page, form, uid="alice", q="garden")
    expect(titles).to_have_text([garden.title])

    page.go_back()
    _agree(page, form, uid="alice", q="")
    form.locator("[name=q]").fill("crown")  # after going back: the user filter still holds
    expect(titles).to_have_text([crown.title])
    _agree(page, form, uid="alice", q="crown")
    page.shot("typed-after-back")


def test_back_twice_before_the_first_page_came_shows_the_page_of_the_last_url(page, sign_in):
    """Each history step asks the server (htmx keeps no page): the answer for the first back, held
    until after the second one's, must not replace the page of the URL the browser is at."""
    form, titles, _, _ = _three_steps_on_the_memory_list(page, sign_in)
    held = []

    def hold_the_first_restore(route):
        restoring = route.request.headers.get("hx-history-restore-request")
        if restoring and "q=garden" in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/memories/"), hold_the_first_restore)
    page.go_back()  # to q=garden: its page held
    for _ in range(100):  # the route's callback runs while the page waits
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "no page was asked for the first back"
    page.go_back()  # to q="" at once
    _agree(page, form, uid="alice", q="")
    expect(titles).to_have_count(2)
    held[0].fulfill(response=held[0].fetch())  # the first answer comes last
    page.wait_for_timeout(1000)

    _agree(page, form, uid="alice", q="")
    expect(titles).to_have_count(2)


def test_search_back_forward_and_reload_keep_the_query_the_options_and_the_results_together(page, sign_in, remember):
    crown = remember("alice", DENTIST)
    garden = remember("alice", GARDEN)
    remember("alice", BUDGET)
    remember("ben", BUDGET)
    sign_in("analyst")
    page.goto("/search/?uid=alice")
    form = page.locator("#search-form")
    summary = page.locator("#results p").first
    first = page.locator("#results li.result").first

    form.locator("[name=strategy]").select_option("semantic")
    expect(page).to_have_url(re.compile(r"[?&]strategy=semantic(&|$)"))
    form.locator("[name=query]").fill("cracked crown at the dentist")
    expect(first).to_have_id(f"result-{crown.id}")
    form.locator("[name=query]").fill("tomatoes in the raised beds")
    expect(first).to_have_id(f"result-{garden.id}")

    page.go_back()
    _agree(page, form, uid="alice", strategy="semantic", query="cracked crown at the dentist")
    expect(first).to_have_id(f"result-{crown.id}")
    page.go_forward()
    _agree(page, form, uid="alice", strategy="semantic", query="tomatoes in the raised beds")
    expect(first).to_have_id(f"result-{garden.id}")
    page.go_back()
    page.reload()
    _agree(page, form, uid="alice", strategy="semantic", query="cracked crown at the dentist")
    expect(first).to_have_id(f"result-{crown.id}")
    expect(summary).to_contain_text("by semantic")

    form.locator("[name=query]").fill("raised beds")  # after going back: the strategy still holds
    expect(first).to_have_id(f"result-{garden.id}")
    expect(summary).to_contain_text("by semantic")
    _agree(page, form, uid="alice", strategy="semantic", query="raised beds")


def test_duplicates_back_forward_and_reload_keep_the_filters_and_the_pairs_together(page, sign_in, remember):
    for uid in ("erin", "finn"):
        remember(uid, DENTIST)
        remember(uid, DENTIST.replace("next Tuesday", "on Tuesday"))
    sign_in("admin")
    page.locator("header nav").get_by_role("link", name="Duplicates").click()
    form = page.locator("form.filters[method=get]")
    pairs = page.locator("#results article.pair")
    count = page.locator("#pair-count")
    expect(pairs).to_have_count(2)

    form.locator("[name=uid]").fill("erin")
    form.get_by_role("button", name="Show").click()
    expect(count).to_have_text("1 pair for erin, open.")
    form.locator("[name=status]").select_option("dismissed")
    form.get_by_role("button", name="Show").click()
    expect(count).to_have_text("0 pairs for erin, dismissed.")

    page.go_back()
    _agree(page, form, uid="erin", status="open")
    expect(count).to_have_text("1 pair for erin, open.")
    page.go_back()
    expect(form.locator("[name=uid]")).to_have_value("")
    expect(count).to_have_text("2 pairs, open.")
    page.go_forward()
    _agree(page, form, uid="erin", status="open")
    expect(pairs).to_have_count(1)
    page.reload()
    _agree(page, form, uid="erin", status="open")
    expect(count).to_have_text("1 pair for erin, open.")

    form.locator("[name=status]").select_option("all")  # after going back: the user filter still holds
    form.get_by_role("button", name="Show").click()
    expect(count).to_have_text("1 pair for erin, all.")
    _agree(page, form, uid="erin", status="all")
