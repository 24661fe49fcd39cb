"""Signing in: lockout after repeated failures (per username and address) and how an admin lifts
it, password validators, and password reset only when mail is set up."""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def ana(db):
    return User.objects.create_user("ana", email="ana@example.com", password=PASSWORD)


def sign_in(client: Client, password: str, username: str = "ana"):
    return client.post("/accounts/login/", {"username": username, "password": password, "next": "/memories/"})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(client: Client, times: int, username: str = "ana") -> None:
    for _ in range(times):
        response = sign_in(client, "not the password", username)
        assert response.status_code == 200 and "didn't match" in response.content.decode()


def lock_out(client: Client, username: str = "ana"):
    """Four wrong passwords are told they did not match; the fifth locks the account (LOGIN_FAILURE_LIMIT)."""
    fail(client, 4, username)
    response = sign_in(client, "not the password", username)
    assert response.status_code == 429 and "This account is locked" in response.content.decode()
    return response


def test_after_five_wrong_passwords_the_right_one_is_refused_too_and_the_page_says_the_account_is_locked(ana):
    client = Client(REMOTE_ADDR="192.0.2.1")
    lock_out(client)

    response = sign_in(client, PASSWORD)

    assert response.status_code == 429 and not signed_in(client)
    page = response.content.decode()
    assert 'id="locked-out"' in page and "This account is locked: too many failed sign-ins from your address" in page
    assert "Try again in 15 minutes, or ask an admin to unlock it." in page
    assert 'name="username"' in page and 'value="ana"' in page  # the form, ready for later


def test_the_lockout_holds_one_username_from_one_address_only(ana):
    User.objects.create_user("ben", password=PASSWORD)
    attacker = Client(REMOTE_ADDR="192.0.2.1")
    lock_out(attacker)
    assert sign_in(attacker, PASSWORD).status_code == 429

    assert sign_in(Client(REMOTE_ADDR="198.51.100.2"), PASSWORD).status_code == 302  # ana, elsewhere
    other_user = Client(REMOTE_ADDR="192.0.2.1")
    assert sign_in(other_user, PASSWORD, "ben").status_code == 302 and signed_in(other_user)


def test_an_address_that_is_not_one_neither_breaks_sign_in_nor_escapes_the_lockout(ana, settings):
    settings.TRUSTED_PROXIES = 1  # X-Forwarded-For is believed, but only a valid address in it

    def attempt(n: int, password: str = "not the password"):
        client = Client(REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=f"not an address {n}")
        return client.post("/accounts/login/", {"username": "ana", "password": password})

    assert [attempt(n).status_code for n in range(4)] == [200] * 4
    assert attempt(4).status_code == 429  # all counted against 192.0.2.1
    assert attempt(5, PASSWORD).status_code == 429


def test_a_success_before_the_limit_starts_the_count_again(ana):
    client = Client(REMOTE_ADDR="192.0.2.1")
    fail(client, 4)
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()
    fail(client, 4)
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_lockout_ends_when_its_time_is_up(ana, settings):
    client = Client(REMOTE_ADDR="192.0.2.1")
    lock_out(client)
    assert sign_in(client, PASSWORD).status_code == 429

    # The time is read when a sign-in is checked: shortened after the lockout (not before, which a
    # busy machine's slow sign-ins could outlast), it is up a second later.
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    time.sleep(1.2)
    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)


def test_without_a_lockout_time_the_page_says_to_ask_an_admin(ana, settings):
    settings.AXES_COOLOFF_TIME = None  # LOGIN_LOCKOUT_MINUTES=0
    client = Client(REMOTE_ADDR="192.0.2.1")
    lock_out(client)

    page = sign_in(client, PASSWORD).content.decode()

    assert "This account is locked" in page and "Ask an admin to unlock it." in page and "Try again in" not in page


def test_an_admin_unlocks_an_account_with_axes_reset_username(ana):
    client = Client(REMOTE_ADDR="192.0.2.1")
    lock_out(client)
    assert sign_in(client, PASSWORD).status_code == 429

    call_command("axes_reset_username", "ana")

    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)


def test_an_admin_sees_the_failed_attempts_in_the_admin_and_deleting_them_unlocks_the_account(ana):
    from axes.models import AccessAttempt

    client = Client(REMOTE_ADDR="192.0.2.1")
    lock_out(client)
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password=PASSWORD))

    listing = admin.get("/admin/axes/accessattempt/").content.decode()
    attempt = AccessAttempt.objects.get(username="ana")
    assert "192.0.2.1" in listing and f"/admin/axes/accessattempt/{attempt.pk}/change/" in listing
    deleted = admin.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    )

    assert deleted.status_code == 302 and not AccessAttempt.objects.exists()
    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)


def test_an_admin_cannot_give_a_new_user_a_weak_password(db):
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password=PASSWORD))

    for weak, says in (("password", "too common"), ("12345678", "entirely numeric"), ("x7!", "too short")):
        response = admin.post(
            "/admin/auth/user/add/",
            {"username": "newbie", "usable_password": "true", "password1": weak, "password2": weak},
        )
        assert response.status_code == 200 and says in response.content.decode(), weak
    assert not User.objects.filter(username="newbie").exists()

    strong = "a long and unusual passphrase"
    response = admin.post(
        "/admin/auth/user/add/",
        {"username": "newbie", "usable_password": "true", "password1": strong, "password2": strong},
    )
    assert response.status_code == 302 and User.objects.get(username="newbie").check_password(strong)


# Password reset: only with mail.


def test_without_mail_the_reset_pages_answer_404_and_the_login_page_offers_none(ana, settings):
    settings.PASSWORD_RESET_ENABLED = False
    client = Client()

    assert "Forgot your password" not in client.get("/accounts/login/").content.decode()
    for path in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"):
        assert client.get(path).status_code == 404, path
    assert client.post("/accounts/password_reset/", {"email": "ana@example.com"}).status_code == 404
    assert client.get("/accounts/reset/MQ/set-password/").status_code == 404
    assert mail.outbox == []


def test_with_mail_a_reset_link_is_mailed_and_sets_a_new_password_that_passes_the_validators(ana, settings):
    settings.PASSWORD_RESET_ENABLED = True  # EMAIL_HOST set; the tests' mail goes to mail.outbox
    client = Client()
    login = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in login and "Forgot your password?" in login

    sent = client.post("/accounts/password_reset/", {"email": "ana@example.com"})
    assert sent.status_code == 302 and "Check your mail" in client.get(sent["Location"]).content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ana@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)

    form_url = client.get(link)["Location"]  # Django hides the token behind a redirect
    weak = client.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 200 and "entirely numeric" in weak.content.decode()
    new = "a fresh and long passphrase"
    done = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and "Password set" in client.get(done["Location"]).content.decode()
    assert sign_in(Client(), new).status_code == 302
