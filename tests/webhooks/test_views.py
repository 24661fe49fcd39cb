"""The webhooks page (admins): endpoints added (the secret shown once), a disabled endpoint shown
as such with its reason and enabled again, the delivery log, a new secret, delete; analysts get
403 and no link."""

import re

import pytest
from django.urls import reverse

from tests.support.htmx import assert_whole_page_or_fragment
from tests.support.transactions import committed
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_events_record

pytestmark = pytest.mark.django_db


def secret_on(page: str) -> str:
    return re.search(r'id="new-webhook-secret">([^<]+)<', page).group(1)


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(signed_in, receiver):
    admin = signed_in("admin")

    added = admin.post(
        reverse("webhook_create"), {"url": receiver.url, "events": ["memory.indexed", "memory.failed"], "uid": "alice"}
    )

    page = added.content.decode()
    endpoint = WebhookEndpoint.objects.get()
    assert added.status_code == 200 and secret_on(page) == endpoint.secret
    assert "no-store" in added["Cache-Control"]
    assert (endpoint.events, endpoint.uid, endpoint.created_by) == (
        ["memory.indexed", "memory.failed"],
        "alice",
        "admin",
    )
    again = admin.get(reverse("webhook_list")).content.decode()
    assert receiver.url in again and endpoint.secret_hint in again and endpoint.secret not in again


def test_the_forms_mistakes_are_shown_at_their_field(signed_in, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    admin = signed_in("admin")

    refused = admin.post(
        reverse("webhook_create"), {"url": "http://169.254.169.254/latest", "events": ["memory.indexed"]}
    )
    no_events = admin.post(reverse("webhook_create"), {"url": "https://93.184.215.14/hook"})

    assert (
        refused.status_code == 400
        and "URL: url refused: 169.254.169.254 is a link-local address" in refused.content.decode()
    )
    assert no_events.status_code == 400 and "Events: This field is required." in no_events.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_disabled_endpoint_shows_why_and_an_admin_enables_it_again(signed_in, receiver, endpoint_for, settings):
    settings.WEBHOOKS_RETRY_BACKOFF_SECONDS = 0
    settings.WEBHOOKS_MAX_ATTEMPTS = 1
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    receiver.default = 500
    endpoint = endpoint_for(receiver)
    with committed():
        webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 1}})])
    admin = signed_in("admin")
    detail = reverse("webhook_detail", args=[endpoint.id])

    page = admin.get(detail).content.decode()
    listed = admin.get(reverse("webhook_list")).content.decode()
    enabled = admin.post(reverse("webhook_enable", args=[endpoint.id]), {"enabled": "on"}, follow=True)

    assert 'id="webhook-state">disabled<' in page and "disabled after 1 failed attempts in a row" in page
    assert "HTTP 500" in page and ">memory.indexed<" in page and ">failed<" in page  # the delivery log
    assert '<span class="badge disabled">disabled</span>' in listed
    assert 'id="webhook-state">active<' in enabled.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""
    disabled = admin.post(reverse("webhook_enable", args=[endpoint.id]), {}, follow=True)
    assert 'id="webhook-state">disabled<' in disabled.content.decode()


def test_the_delivery_log_filters_by_status_as_a_page_and_a_fragment(signed_in, receiver, endpoint_for):
    endpoint = endpoint_for(receiver)
    with committed():
        webhook_events_record(type="memory.deleted", items=[("alice", {"memory": {"id": 1}})])
    admin = signed_in("admin")
    url = reverse("webhook_detail", args=[endpoint.id])

    fragment = assert_whole_page_or_fragment(admin, f"{url}?status=delivered", fragment='<section id="deliveries">')
    none_failed = admin.get(f"{url}?status=failed", headers={"HX-Request": "true"}).content.decode()

    assert ">memory.deleted<" in fragment and ">delivered<" in fragment
    assert "No deliveries with this status yet." in none_failed


def test_a_new_secret_is_shown_once_and_delete_removes_the_endpoint(signed_in, receiver, endpoint_for):
    endpoint = endpoint_for(receiver)
    admin = signed_in("admin")

    renewed = admin.post(reverse("webhook_secret", args=[endpoint.id])).content.decode()
    endpoint.refresh_from_db()
    deleted = admin.post(reverse("webhook_delete", args=[endpoint.id]), follow=True)

    assert secret_on(renewed) == endpoint.secret
    assert f"Webhook #{endpoint.id} ({receiver.url}) was deleted." in deleted.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_analysts_get_403_and_see_no_webhooks_link(signed_in, receiver, endpoint_for):
    endpoint = endpoint_for(receiver)
    analyst = signed_in("analyst")

    pages = [analyst.get(reverse("webhook_list")), analyst.get(reverse("webhook_detail", args=[endpoint.id]))]
    posts = [
        analyst.post(reverse("webhook_create"), {"url": receiver.url, "events": ["memory.indexed"]}),
        analyst.post(reverse("webhook_enable", args=[endpoint.id]), {}),
        analyst.post(reverse("webhook_secret", args=[endpoint.id])),
        analyst.post(reverse("webhook_delete", args=[endpoint.id])),
    ]

    assert [r.status_code for r in pages + posts] == [403] * 6
    assert reverse("webhook_list") not in analyst.get(reverse("memory_list")).content.decode()
    assert reverse("webhook_list") in signed_in("admin", username="root").get(reverse("memory_list")).content.decode()
    assert WebhookEndpoint.objects.get().enabled
