"""What every dashboard page does, whatever is in the database: empty states, error pages, the favicon."""

import pytest

pytestmark = pytest.mark.django_db

PAGES = [
    "/memories/",
    "/search/",
    "/clusters/",
    "/duplicates/",
    "/evaluation/",
    "/pipeline/",
    "/keys/",
    "/audit/",
    "/webhooks/",
]


def test_an_empty_install_answers_every_page_with_an_empty_state(signed_in):
    admin = signed_in("admin")

    answers = {url: admin.get(url) for url in PAGES}

    assert {url: response.status_code for url, response in answers.items()} == dict.fromkeys(PAGES, 200)
    assert "No memories yet: nothing to search" in answers["/search/"].content.decode()
    assert "Cannot search" not in answers["/search/"].content.decode()


def test_missing_and_forbidden_pages_are_pages_of_the_dashboard(signed_in):
    analyst = signed_in("analyst")

    for url in ("/memories/99999/", "/clusters/99999/", "/duplicates/99999/", "/no/such/page/"):
        missing = analyst.get(url)
        body = missing.content.decode()
        assert missing.status_code == 404 and "<h1>Not found</h1>" in body
        assert 'class="topbar"' in body and 'rel="icon"' in body and "/static/css/app.css" in body
    forbidden = analyst.get("/keys/")
    assert forbidden.status_code == 403
    assert "<h1>Not allowed</h1>" in forbidden.content.decode() and 'class="topbar"' in forbidden.content.decode()


def test_the_favicon_is_linked_on_every_page_and_favicon_ico_leads_to_it(signed_in):
    admin = signed_in("admin")

    for url in PAGES:
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in admin.get(url).content.decode()
    ico = admin.get("/favicon.ico")
    assert ico.status_code == 301 and ico.url == "/static/favicon.svg"


def test_search_errors_name_the_fields_by_their_labels(signed_in, remember):
    remember("alice", "Alice: the budget is due on Friday.\nBob: I will send it on Thursday.")
    analyst = signed_in("analyst")

    unknown = analyst.get("/search/", {"uid": "nobody", "query": "budget"}).content.decode()
    bad_date = analyst.get("/search/", {"uid": "alice", "query": "budget", "starts": "2026-02-30"}).content.decode()
    reversed_range = analyst.get(
        "/search/", {"uid": "alice", "query": "budget", "starts": "2026-03-02", "ends": "2026-03-01"}
    ).content.decode()
    judged = analyst.post("/search/judge/", {"search_id": "x", "memory_id": "1", "relevant": "1"}).content.decode()

    assert "User: Select a valid choice." in unknown and "uid:" not in unknown
    assert "Start date: Enter a valid date." in bad_date and "starts:" not in bad_date
    assert "End date: End date is before start date." in reversed_range
    assert "Search id: Enter a whole number." in judged
