"""API keys as users expect: made, listed, revoked and expired on the dashboard (admins only) and
by command; the secret shown once; a revoked or expired key refused at its next request."""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from memories.models import ApiKey
from memories.selectors import api_key_authenticate
from memories.services import api_key_create, api_key_expire, api_key_revoke
from omi_memory.errors import Conflict, ValidationFailed
from tests.conftest import Api
from tests.support.actors import COMMAND

pytestmark = pytest.mark.django_db


def new_key(**fields) -> tuple[ApiKey, str]:
    return api_key_create(name=fields.pop("name", "app"), actor=COMMAND, **fields)


def status_of(raw: str) -> int:
    return Api(raw).get("/memories", uid="alice").status_code


# Refused at once


def test_a_revoked_key_gets_401_at_its_next_request_even_just_after_a_use(signed_in):
    key, raw = new_key(uid="alice")
    assert status_of(raw) == 200  # last used just now: that is written at most once a minute, not cached

    signed_in("admin").post(reverse("api_key_revoke", args=[key.id]))

    response = Api(raw).get("/memories", uid="alice")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_an_expired_key_gets_401_and_one_that_has_not_expired_works():
    key, raw = new_key(expires_at=timezone.now() + timedelta(days=1))
    assert status_of(raw) == 200

    ApiKey.objects.filter(id=key.id).update(expires_at=timezone.now() - timedelta(seconds=1))  # the day has passed

    assert status_of(raw) == 401
    assert ApiKey.objects.get(id=key.id).state == "expired"


def test_a_key_cannot_be_made_expired_nor_revoked_twice():
    with pytest.raises(ValidationFailed, match="future"):
        new_key(expires_at=timezone.now() - timedelta(minutes=1))
    key, _ = new_key()
    with pytest.raises(ValidationFailed, match="revoke it"):
        api_key_expire(key=key, expires_at=timezone.now(), actor=COMMAND)
    api_key_revoke(key=key, actor=COMMAND)
    with pytest.raises(Conflict, match="revoked already"):
        api_key_revoke(key=key, actor=COMMAND)
    with pytest.raises(Conflict, match="is revoked"):
        api_key_expire(key=key, expires_at=timezone.now() + timedelta(days=1), actor=COMMAND)


# The dashboard


def test_an_admin_makes_a_key_and_sees_its_secret_once(signed_in):
    admin = signed_in("admin", username="ada")

    made = admin.post(reverse("api_key_create"), {"name": "mobile app", "uid": "alice", "expires_in_days": "30"})

    assert made.status_code == 200 and "no-store" in made["Cache-Control"]
    raw = re.search(r'<pre class="secret" id="new-key-secret">(omk_[^<]+)</pre>', made.content.decode()).group(1)
    key = api_key_authenticate(raw_key=raw)
    assert (key.name, key.uid, key.created_by) == ("mobile app", "alice", "ada")
    assert timedelta(days=29, hours=23) < key.expires_at - timezone.now() <= timedelta(days=30)
    listing = admin.get(reverse("api_key_list")).content.decode()
    row = re.search(rf'<tr id="api-key-{key.id}">.*?</tr>', listing, re.S).group(0)
    assert f"{key.prefix}…" in row and "alice" in row and "ada" in row and "active" in row
    assert raw not in listing and key.key_hash not in listing


def test_keys_for_all_users_and_on_a_date_and_the_forms_mistakes(signed_in):
    admin = signed_in("admin")

    admin.post(reverse("api_key_create"), {"name": "backend", "expires_on": "2099-06-01"})
    both = admin.post(reverse("api_key_create"), {"name": "x", "expires_in_days": "3", "expires_on": "2099-06-01"})
    bad_uid = admin.post(reverse("api_key_create"), {"name": "x", "uid": "not a uid!"})
    past = admin.post(reverse("api_key_create"), {"name": "x", "expires_on": "2020-01-01"})

    key = ApiKey.objects.get()
    assert (key.name, key.uid, key.expires_at) == ("backend", "", datetime(2099, 6, 1, tzinfo=UTC))
    assert "all users" in admin.get(reverse("api_key_list")).content.decode()
    for response, message in [(both, "not both"), (bad_uid, "not a valid user id"), (past, "in the future")]:
        assert response.status_code == 400 and message in response.content.decode()
        assert "new-key-secret" not in response.content.decode()


def test_an_admin_revokes_a_key_and_sets_another_ones_expiry(signed_in):
    admin = signed_in("admin", username="ada")
    old, _ = new_key(name="old")
    rotating, raw = new_key(name="rotating")

    admin.post(reverse("api_key_revoke", args=[old.id]))
    page = admin.post(reverse("api_key_expire", args=[rotating.id]), {"expires_on": "2099-01-31"}, follow=True)

    old.refresh_from_db()
    rotating.refresh_from_db()
    assert (old.state, old.revoked_by) == ("revoked", "ada")
    assert rotating.expires_at == datetime(2099, 1, 31, tzinfo=UTC) and status_of(raw) == 200
    body = page.content.decode()
    assert "expires 2099-01-31 00:00 UTC" in body
    revoked_row = re.search(rf'<tr id="api-key-{old.id}">.*?</tr>', body, re.S).group(0)
    assert "revoked" in revoked_row and "by ada" in revoked_row and "Revoke</button>" not in revoked_row


def test_revoking_with_htmx_answers_with_the_keys_section(signed_in):
    admin = signed_in("admin")
    key, _ = new_key()

    response = admin.post(reverse("api_key_revoke", args=[key.id]), headers={"HX-Request": "true"}, follow=True)

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="keys">') and "<html" not in body
    assert "is revoked" in body and "revoked" in re.search(rf'<tr id="api-key-{key.id}">.*?</tr>', body, re.S).group(0)


def test_analysts_get_403_and_see_no_keys_link(signed_in):
    analyst = signed_in("analyst")
    key, raw = new_key()

    assert analyst.get(reverse("api_key_list")).status_code == 403
    assert analyst.post(reverse("api_key_create"), {"name": "mine"}).status_code == 403
    assert analyst.post(reverse("api_key_revoke", args=[key.id])).status_code == 403
    assert analyst.post(reverse("api_key_expire", args=[key.id]), {"expires_on": "2099-01-01"}).status_code == 403
    assert "/keys/" not in analyst.get(reverse("memory_list")).content.decode()
    assert ApiKey.objects.count() == 1 and status_of(raw) == 200
    assert 'href="/keys/"' in signed_in("admin").get(reverse("memory_list")).content.decode()


def test_the_admin_site_shows_keys_but_does_not_change_them(client, db):
    from django.contrib.auth.models import User

    key, raw = new_key()
    client.force_login(User.objects.create_superuser("root", password="pw"))

    assert key.prefix in client.get("/admin/memories/apikey/").content.decode()
    assert client.post(f"/admin/memories/apikey/{key.id}/delete/", {"post": "yes"}).status_code == 403
    assert status_of(raw) == 200


# The commands


def test_create_api_key_with_an_expiry_prints_the_key_alone_on_its_last_line():
    out = io.StringIO()

    call_command(
        "create_api_key", "--name", "cron", "--expires-at", "2099-02-03T04:05", stdout=out, stderr=io.StringIO()
    )

    raw = out.getvalue().strip().splitlines()[-1]
    key = api_key_authenticate(raw_key=raw)
    assert (key.name, key.uid, key.created_by) == ("cron", "", "command")
    assert key.expires_at == datetime(2099, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--expires-in", "0"], "from 1 to 36500"),
        (["--expires-at", "next week"], "not an ISO 8601"),
        (["--expires-at", "2020-01-01"], "in the future"),
    ],
)
def test_create_api_key_refuses_a_bad_expiry(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", "--name", "x", *arguments)
    assert not ApiKey.objects.exists()


def test_list_api_keys_shows_each_key_without_its_secret():
    active, raw = new_key(name="backend", uid="alice")
    revoked, _ = new_key(name="retired")
    api_key_revoke(key=revoked, actor=COMMAND)
    out = io.StringIO()

    call_command("list_api_keys", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:5] == ["#", "prefix", "name", "scope", "state"]
    assert re.search(rf"^{revoked.id}\s+{revoked.prefix}…\s+retired\s+all users\s+revoked\s", lines[1])
    assert re.search(rf"^{active.id}\s+{active.prefix}…\s+backend\s+alice\s+active\s", lines[2])
    assert raw not in out.getvalue() and active.key_hash not in out.getvalue()
    only = io.StringIO()
    call_command("list_api_keys", "--active", stdout=only)
    assert "backend" in only.getvalue() and "retired" not in only.getvalue()


def test_revoke_and_expire_api_key_find_a_key_by_number_or_prefix():
    first, first_raw = new_key(name="first")
    second, second_raw = new_key(name="second")

    call_command("revoke_api_key", f"{first.prefix}…", stdout=io.StringIO())
    call_command("expire_api_key", str(second.id), "--expires-in", "7", stdout=io.StringIO())

    assert status_of(first_raw) == 401 and status_of(second_raw) == 200
    second.refresh_from_db()
    assert timedelta(days=6, hours=23) < second.expires_at - timezone.now() <= timedelta(days=7)
    with pytest.raises(CommandError, match="no API key"):
        call_command("revoke_api_key", "omk_nothere")
    with pytest.raises(CommandError, match="revoked already"):
        call_command("revoke_api_key", str(first.id))
    with pytest.raises(CommandError):  # an expiry is required
        call_command("expire_api_key", str(second.id))
