"""The API keys page and the audit trail in a browser: a key made, shown once, revoked after a
confirmation; each step in the audit trail, which filters as you type."""

import re

from playwright.sync_api import expect

from memories.models import ApiKey
from memories.selectors import api_key_authenticate


def test_an_admin_makes_a_key_sees_it_once_revokes_it_and_finds_both_in_the_audit_trail(page, sign_in):
    sign_in("admin")
    page.locator("header nav").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()

    page.get_by_label("Name").fill("mobile app")
    page.get_by_label("User").fill("alice")
    page.get_by_label("Expires in (days)").fill("30")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret")
    expect(secret).to_have_text(re.compile(r"^omk_\S+$"))
    raw = secret.inner_text()
    key = ApiKey.objects.get()
    assert api_key_authenticate(raw_key=raw).id == key.id
    row = page.locator(f"#api-key-{key.id}")
    expect(row).to_contain_text(f"{key.prefix}…")
    expect(row.locator(".badge")).to_have_text("active")
    page.shot("made")

    page.goto("/keys/")
    expect(page.locator("#new-key-secret")).to_have_count(0)  # shown once
    expect(page.locator("body")).not_to_contain_text(raw)

    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.locator(f"#api-key-{key.id}").get_by_role("button", name="Revoke").click()
    expect(row.locator(".badge")).to_have_text("revoked")
    expect(page.locator("#keys .messages")).to_contain_text("is revoked")
    assert dialogs and "401" in dialogs[0]
    assert api_key_authenticate(raw_key=raw) is None
    expect(page).to_have_url(re.compile(r"/keys/$"))
    page.shot("revoked")

    page.locator("header nav").get_by_role("link", name="Audit").click()
    events = page.locator("#results tbody tr")
    expect(events).to_have_count(2)
    page.locator("#audit-filters [name=action]").select_option("api_key.revoke")
    expect(events).to_have_count(1)
    expect(events.first).to_contain_text("API key revoked")
    expect(events.first).to_contain_text("admin")
    expect(page).to_have_url(re.compile(r"[?&]action=api_key.revoke(&|$)"))
    page.shot("audit")
