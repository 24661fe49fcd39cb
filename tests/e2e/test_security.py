"""In Chromium, under the Content Security Policy: the API docs, every dashboard page and the admin
work with nothing blocked (the `page` fixture fails a test on any console error or CSP violation);
a locked-out account is told so, and an admin unlocks it in the admin."""

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from memories.models import Memory
from memories.services import api_key_create
from tests.support.actors import COMMAND
from tests.support.transcripts import BUDGET, DENTIST, GARDEN

from .conftest import PASSWORD


def test_the_api_docs_come_from_this_server_and_try_it_out_calls_the_api(page, live_server, transactional_db):
    key = api_key_create(name="docs", actor=COMMAND)[1]
    Memory.objects.create(uid="alice", title="Cracked crown", transcript="the crown is cracked", status="indexed")
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))

    response = page.goto("/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name=re.compile("omi-memory"))).to_be_visible()
    expect(page.get_by_text("Search one user's memories")).to_be_visible()

    page.get_by_role("button", name="Authorize").first.click()
    by_key = page.locator(".modal-ux form").filter(has_text="X-API-Key")  # not the admin's session
    by_key.locator("input[type=text]").fill(key)
    by_key.locator("button.authorize").click()  # named "Apply credentials"
    by_key.locator("button.btn-done").click()
    listing = page.locator("#operations-memories-memories_api_list_memories")
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    expect(listing.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(listing.locator(".live-responses-table")).to_contain_text("Cracked crown")
    page.shot("tried")

    assert hosts == {urlsplit(live_server.url).netloc}, hosts  # no CDN: works offline


def test_every_dashboard_page_and_the_admin_pass_the_policy(page, sign_in, remember):
    dentist = remember("alice", DENTIST)
    remember("alice", BUDGET)
    remember("alice", GARDEN)
    admin = sign_in("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()

    page.locator(f"tr#memory-{dentist.id} a").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(dentist.title)

    page.get_by_role("link", name="Search").click()
    page.locator("#search-form [name=query]").fill("cracked crown")
    expect(page.locator("#results")).to_contain_text("by hybrid")
    # A choice in a select searches again (an htmx trigger `change target:select`, no eval).
    page.locator("#search-form [name=strategy]").select_option("semantic")
    expect(page.locator("#results")).to_contain_text("by semantic")
    expect(page.locator(f"#result-{dentist.id}")).to_be_visible()

    for link, heading in (
        ("Clusters", "Clusters"),
        ("Duplicates", "Duplicates"),
        ("Evaluation", "Evaluation"),
        ("Pipeline", "Pipeline"),
    ):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    expect(page.locator("#count-indexed")).to_contain_text("3")

    page.goto("/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.get_by_role("link", name="Access attempts").click()
    expect(page.get_by_role("heading", name=re.compile("access attempt", re.I))).to_be_visible()
    page.shot("admin")


def test_deleting_a_memory_asks_first(page, sign_in):
    memory = Memory.objects.create(
        uid="alice", title="Cracked crown", transcript="the crown is cracked", status="indexed"
    )
    sign_in("admin")
    page.goto(f"/memories/{memory.id}/")
    asked = []

    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#memory-status-badge")).to_have_text("indexed")
    assert asked == [f"Delete memory #{memory.id}? Its vectors are removed too."]

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/memories/$"))
    memory.refresh_from_db()
    assert memory.status == "deleted"


def test_a_locked_out_user_is_told_so_and_signs_in_once_an_admin_unlocks_them_in_the_admin(page, user, settings):
    from django.contrib.auth.models import User

    settings.AXES_FAILURE_LIMIT = 3
    user("analyst", username="ana")
    User.objects.create_superuser("root", password=PASSWORD)

    def sign_in_as(username: str, password: str):
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

    page.goto("/accounts/login/")
    for _ in range(2):
        sign_in_as("ana", "not the password")
        expect(page.locator("p.error")).to_contain_text("didn't match")
    sign_in_as("ana", "still not it")
    locked = page.locator("#locked-out")
    expect(locked).to_contain_text("This account is locked: too many failed sign-ins from your address.")
    expect(locked).to_contain_text("Try again in 15 minutes, or ask an admin to unlock it.")
    sign_in_as("ana", PASSWORD)  # the right password: still locked
    expect(locked).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.shot("locked")

    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/admin/axes/accessattempt/")
    row = page.locator("#result_list tbody tr", has_text="ana")
    row.locator("input[type=checkbox]").check()
    page.locator("select[name=action]").select_option("delete_selected")
    page.get_by_role("button", name="Go").click()
    page.get_by_role("button", name=re.compile("Yes, I’m sure|Yes, I'm sure")).click()
    expect(page.locator(".messagelist")).to_contain_text("Successfully deleted 1")
    page.locator("#logout-form button").click()

    page.goto("/accounts/login/")
    sign_in_as("ana", PASSWORD)
    expect(page).to_have_url(re.compile(r"/memories/$"))
    expect(page.locator("header .whoami")).to_contain_text("ana · analyst")
