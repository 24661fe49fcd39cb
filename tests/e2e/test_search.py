"""The search page: results as you type, judging a result in place."""

import re

from playwright.sync_api import expect

from search.models import RelevanceFeedback
from tests.support.transcripts import BUDGET, DENTIST, GARDEN


def test_analyst_searches_as_they_type_and_judges_a_result_in_place(page, sign_in, remember):
    dentist = remember("alice", DENTIST)
    remember("alice", BUDGET)
    remember("alice", GARDEN)
    analyst = sign_in("analyst")

    page.get_by_role("link", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search/$"))
    page.evaluate("window.stillTheSamePage = true")
    page.locator("#search-form [name=query]").press_sequentially("cracked crown at the dentist", delay=20)

    results = page.locator("#results li.result")
    expect(results.first).to_have_id(f"result-{dentist.id}")
    expect(page.locator("#results")).to_contain_text("for alice")
    expect(page).to_have_url(re.compile(r"[?&]query=cracked(\+|%20)crown"))
    assert page.evaluate("window.stillTheSamePage") is True, "the results came with a page reload"
    page.shot("results")

    result = page.locator(f"#result-{dentist.id}")
    result.get_by_role("button", name="👍 Relevant").click()
    expect(result.locator(".badge.relevant")).to_have_text("judged relevant")
    expect(result.get_by_role("button", name="👍 Relevant")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.stillTheSamePage") is True, "judging reloaded the page"

    judgment = RelevanceFeedback.objects.get()
    assert (judgment.memory_id, judgment.relevant, judgment.user_id) == (dentist.id, True, analyst.id)
    assert judgment.search.queries == ["cracked crown at the dentist"]


def test_scores_say_how_good_a_result_is_and_near_duplicates_fold_under_the_first(page, sign_in, remember):
    first = remember("alice", DENTIST)
    again = remember("alice", DENTIST)  # the same visit recorded twice: paired when indexed
    remember("alice", BUDGET)
    remember("alice", GARDEN)
    sign_in("analyst")

    page.goto("/search/?uid=alice&query=xyzzy+qwerty")
    results = page.locator("#results li.result")
    expect(results).to_have_count(3)  # four memories, the duplicate folded
    expect(page.locator("#results li.result.weak")).to_have_count(3)
    expect(results.first.locator(".badge.weak")).to_have_text("weak")
    assert float(results.first.locator(".score").inner_text()) <= 1
    page.shot("nonsense is weak")

    query = page.locator("#search-form [name=query]")
    query.fill("")
    query.press_sequentially("Cracked CROWNS", delay=20)
    top = page.locator("#results li.result").first
    expect(top).to_have_id(re.compile(rf"result-({first.id}|{again.id})$"))
    expect(top).not_to_have_class(re.compile(r"\bweak\b"))
    expect(top.locator(".snippet mark").first).to_have_text(re.compile(r"^(cracked|crown)$", re.I))
    other = again.id if top.get_attribute("id") == f"result-{first.id}" else first.id
    also = top.locator(".also a")
    expect(also).to_have_text(f"#{other}")
    page.shot("matched words and a near-duplicate")

    also.click()
    expect(page).to_have_url(re.compile(rf"/memories/{other}/$"))
