"""The address rule: only http(s), and only public addresses, at registration and at delivery
(resolved again then: a name that turns private is refused, not followed)."""

import ssl

import pytest

from omi_memory.errors import ValidationFailed
from tests.support.actors import COMMAND
from tests.support.receiver import Receiver, self_signed
from tests.support.transactions import committed
from webhooks import services as webhooks_services
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create, webhook_events_record

pytestmark = pytest.mark.django_db

REFUSED = {
    "http://127.0.0.1:8080/hook": "loopback",
    "http://10.1.2.3/hook": "private",
    "https://192.168.0.10/hook": "private",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://[::1]:9000/hook": "loopback",
    "http://[fe80::1]/hook": "link-local",
    "http://[::ffff:10.0.0.1]/hook": "private",
    "http://0.0.0.0/hook": "unspecified",
    "http://localhost:8000/hook": "loopback",  # a name: what it resolves to counts
}


def register(url: str):
    return webhook_endpoint_create(url=url, events=["memory.indexed"], actor=COMMAND)


@pytest.mark.parametrize("url", REFUSED)
def test_loopback_private_and_link_local_addresses_are_refused(url):
    with pytest.raises(ValidationFailed) as refused:
        register(url)

    assert refused.value.details == {"field": "url"}
    assert f"{REFUSED[url]} address" in refused.value.message


def test_names_that_resolve_to_a_private_address_are_refused(dns):
    dns["hooks.example.net"] = ["10.0.0.7"]
    dns["mixed.example.net"] = ["93.184.215.14", "127.0.0.1"]  # one private address is enough
    dns["v6.example.net"] = ["::1"]

    for name, kind in (("hooks", "private"), ("mixed", "loopback"), ("v6", "loopback")):
        with pytest.raises(ValidationFailed, match=f"{name}.example.net resolves to .* {kind} address"):
            register(f"https://{name}.example.net/omi")
    dns["hooks.example.net"] = ["93.184.215.14"]
    assert register("https://hooks.example.net/omi").id


@pytest.mark.parametrize(
    "url, problem",
    [
        ("ftp://93.184.215.14/hook", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("https:///hook", "no host"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_only_http_and_https_urls_of_a_host_that_resolves(url, problem):
    with pytest.raises(ValidationFailed, match=problem):
        register(url)


def test_private_addresses_are_allowed_when_the_setting_says_so(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True

    assert register("http://127.0.0.1:8080/hook").id


def test_a_name_that_turns_private_after_registration_is_refused_at_delivery(dns, receiver, settings):
    """DNS rebinding: public when registered, the receiver's loopback at delivery: nothing is sent
    (the receiver listens on 127.0.0.1, so only the rule stands between the delivery and it)."""
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    dns["rebind.example.net"] = ["93.184.215.14"]
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint = webhook_endpoint_create(
        url=f"http://rebind.example.net:{port}/hook", events=["memory.indexed"], actor=COMMAND
    )
    dns["rebind.example.net"] = ["127.0.0.1"]

    with committed():
        webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 1}})])

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert receiver.received == []
    assert delivery.status == "failed" and delivery.response_status is None
    assert "rebind.example.net resolves to 127.0.0.1, which is a loopback address" in delivery.last_error


def test_https_goes_to_the_checked_address_and_verifies_the_hosts_certificate(dns, settings, tmp_path, monkeypatch):
    """The request connects to the address that was checked, and TLS still checks the host's name
    (its certificate), not the address's: a certificate for another name is refused."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    dns["hooks.example.net"] = ["127.0.0.1"]
    trusted = []
    monkeypatch.setattr(webhooks_services, "_tls_context", lambda: ssl.create_default_context(cafile=trusted[-1]))

    for name in ("hooks.example.net", "other.example.net"):
        tls = self_signed(tmp_path, name)
        trusted.append(tls[0])
        with Receiver(tls=tls) as receiver:
            endpoint = webhook_endpoint_create(
                url=f"https://hooks.example.net:{receiver.port}/omi", events=["memory.indexed"], actor=COMMAND
            )
            with committed():
                webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 1}})])
            delivery = WebhookDelivery.objects.get(endpoint=endpoint)
            if name == "hooks.example.net":
                [hook] = receiver.received
                assert hook.headers["Host"] == f"hooks.example.net:{receiver.port}" and hook.path == "/omi"
                assert delivery.status == "delivered"
            else:
                assert receiver.received == [] and delivery.status == "failed"
                assert "Hostname mismatch, certificate is not valid for 'hooks.example.net'" in delivery.last_error, (
                    delivery.last_error
                )
