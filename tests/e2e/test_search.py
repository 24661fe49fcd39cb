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
