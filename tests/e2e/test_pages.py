"""Every page of an empty install, in the browser: an answer of 200 with nothing on it failing to
load, the favicon, the styled 404; the API docs let a signed-in admin try the API."""

from playwright.sync_api import expect

from tests.omi_memory.test_pages import PAGES  # the dashboard pages, one list


def test_an_empty_install_loads_every_page_and_everything_on_it(page, sign_in):
    failed = []
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    sign_in("admin")

    for url in PAGES:
        assert page.goto(url).status == 200, url
        expect(page.locator("link[rel=icon]")).to_have_attribute("href", "/static/favicon.svg")
    assert page.request.get("/static/favicon.svg").status == 200
    assert page.goto("/memories/99999/").status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("header.topbar nav")).to_be_visible()
    page.shot("not-found")

    assert failed == [f"404 {page.url}"]  # the missing page itself, nothing else


def test_an_admin_tries_the_search_in_the_api_docs(page, sign_in, remember):
    remember("alice", "Alice: the dentist said my crown is cracked.\nDr. Patel: Tuesday at 3pm then.")
    sign_in("admin")

    page.goto("/api/v1/docs")
    operation = page.locator(".opblock").filter(has=page.get_by_text("Search one user's memories"))
    operation.get_by_text("Search one user's memories").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()

    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text('"uid": "alice"')
    page.shot("tried")
