"""Events fired by the pipeline, delivered to a real HTTP receiver on 127.0.0.1, signed so that the
README's snippet verifies them; retries, the delivery log, and disabling after repeated failures.
(Without Redis the tasks run in-process: a retry comes at once. The backoff between attempts is
checked with a real worker: test_worker.py.)"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from memories.models import Memory
from memories.services import memory_delete, user_erase
from tests.support.actors import COMMAND
from tests.support.parts import FlakyExtractor
from tests.support.receiver import documented_verifier
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_update, webhook_events_record, webhook_sweep

pytestmark = pytest.mark.django_db


def test_an_indexed_memory_is_posted_signed_as_the_readme_verifies_it(receiver, endpoint_for, remember):
    endpoint = endpoint_for(receiver)
    verify = documented_verifier()

    memory = remember("alice", DENTIST)

    [hook] = receiver.of_type("memory.indexed")
    body = hook.json
    assert body["type"] == "memory.indexed" and body["uid"] == "alice"
    assert body["data"]["memory"]["id"] == memory.id and body["data"]["memory"]["status"] == "indexed"
    assert body["data"]["memory"]["title"] == memory.title and body["data"]["memory"]["category"] == "health"
    assert hook.headers["X-Omi-Event-Id"] == body["id"] and hook.headers["Content-Type"] == "application/json"
    signature = hook.headers["X-Omi-Signature"]
    assert verify(endpoint.secret, signature, hook.body)
    assert not verify("whsec_another-secret-entirely", signature, hook.body)
    assert not verify(endpoint.secret, signature, hook.body.replace(b'"alice"', b'"mallory"'))  # tampered
    timestamp = int(signature.split(",")[0].removeprefix("t="))
    assert abs(timestamp - time.time()) < 60
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event_id=body["id"])
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.last_error == ""


def test_the_snippet_refuses_a_replay_outside_its_tolerance(receiver, endpoint_for, remember, monkeypatch):
    endpoint = endpoint_for(receiver, events=["memory.indexed"])
    verify = documented_verifier()
    remember("alice", DENTIST)
    [hook] = receiver.received
    now = time.time()

    monkeypatch.setattr(time, "time", lambda: now + 301)  # the same request, replayed five minutes later

    assert not verify(endpoint.secret, hook.headers["X-Omi-Signature"], hook.body)
    assert verify(endpoint.secret, hook.headers["X-Omi-Signature"], hook.body, tolerance=3600)


def test_a_deleted_memory_and_an_erased_user_are_posted(receiver, endpoint_for, remember, api):
    endpoint_for(receiver, events=["memory.deleted"])
    dentist, budget, other = remember("alice", DENTIST), remember("alice", BUDGET), remember("ben", BUDGET)

    assert api.delete(f"/memories/{dentist.id}").status_code == 204
    with committed():
        user_erase(uid="ben", actor=COMMAND)
        memory_delete(memory=Memory.objects.get(id=dentist.id), actor=COMMAND)  # deleted already: nothing more

    posted = [hook.json["data"]["memory"] for hook in receiver.of_type("memory.deleted")]
    assert [(m["id"], m["uid"], m["status"]) for m in posted] == [
        (dentist.id, "alice", "deleted"),
        (other.id, "ben", "deleted"),
    ]
    assert len(receiver.received) == 2  # nothing for indexing: not subscribed
    assert budget.id not in [m["id"] for m in posted]


def test_a_memory_that_fails_for_good_is_posted_with_its_reason(receiver, endpoint_for, remember, settings):
    settings.EXTRACTOR = "tests.support.parts.FlakyExtractor"
    FlakyExtractor.reset(failures=100, permanent=True)
    endpoint_for(receiver)

    memory = remember("alice", DENTIST)

    assert memory.status == "failed"
    [hook] = receiver.received
    assert hook.headers["X-Omi-Event"] == "memory.failed"
    assert hook.json["data"]["memory"]["id"] == memory.id
    assert "extractor unavailable" in hook.json["data"]["memory"]["failure_reason"]


def test_a_new_duplicate_pair_is_posted(receiver, endpoint_for, remember):
    endpoint_for(receiver, events=["duplicate.found"])
    first = remember("alice", DENTIST)
    second = remember("alice", DENTIST.replace("next Tuesday", "on Tuesday"))

    [hook] = receiver.received
    pair = hook.json["data"]["pair"]
    assert hook.headers["X-Omi-Event"] == "duplicate.found" and hook.json["uid"] == "alice"
    assert pair["memory_ids"] == [first.id, second.id] and pair["similarity"] >= 0.95 and pair["status"] == "open"


def test_an_endpoint_for_one_user_gets_only_that_users_events(receiver, endpoint_for, remember):
    endpoint_for(receiver, events=["memory.indexed"], uid="ben")

    remember("alice", DENTIST)
    bens = remember("ben", BUDGET)

    assert [hook.json["data"]["memory"]["id"] for hook in receiver.received] == [bens.id]


def attempts_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("omi_webhook_attempts_total", {"event": "memory.indexed", "outcome": outcome}) or 0


def test_a_failed_attempt_is_tried_again_with_the_same_body_until_it_is_answered(receiver, endpoint_for, settings):
    settings.WEBHOOKS_RETRY_BACKOFF_SECONDS = 0
    receiver.statuses = [500, 503]
    endpoint = endpoint_for(receiver)
    failed, delivered = attempts_counted("failed"), attempts_counted("delivered")

    with committed():
        webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 7}})])

    first, second, third = receiver.received
    assert first.body == second.body == third.body
    assert first.headers["X-Omi-Delivery"] == third.headers["X-Omi-Delivery"]
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 200)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.last_success_at and endpoint.last_failure_at
    assert (attempts_counted("failed") - failed, attempts_counted("delivered") - delivered) == (2, 1)  # /metrics


def test_an_endpoint_is_disabled_after_repeated_failures_until_an_admin_enables_it(
    receiver, endpoint_for, settings, api
):
    settings.WEBHOOKS_RETRY_BACKOFF_SECONDS = 0
    settings.WEBHOOKS_MAX_ATTEMPTS = 2
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    receiver.default = 500
    endpoint = endpoint_for(receiver)

    def event(memory_id: int) -> None:
        with committed():
            webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": memory_id}})])

    event(1)  # two attempts, both refused: failed
    event(2)  # the third failed attempt in a row disables the endpoint: no second attempt
    event(3)  # disabled: nothing is sent

    assert len(receiver.received) == 3
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.consecutive_failures == 3
    assert "disabled after 3 failed attempts in a row; the last: HTTP 500" in endpoint.disabled_reason
    log = list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("id")
        .values_list("status", "attempts", "response_status")
    )
    assert log == [("failed", 2, 500), ("failed", 1, 500)]
    assert "receiver says no" in WebhookDelivery.objects.filter(endpoint=endpoint).first().last_error
    shown = api.get(f"/webhooks/endpoints/{endpoint.id}").json()
    assert shown["enabled"] is False and shown["disabled_reason"] == endpoint.disabled_reason

    receiver.default = 200
    answer = api.patch(f"/webhooks/endpoints/{endpoint.id}", {"enabled": True})
    event(4)

    assert answer.status_code == 200 and answer.json()["enabled"] is True and answer.json()["consecutive_failures"] == 0
    assert len(receiver.received) == 4 and receiver.received[-1].json["data"]["memory"]["id"] == 4
    assert WebhookEndpoint.objects.get(id=endpoint.id).consecutive_failures == 0


def test_a_pending_delivery_of_an_endpoint_disabled_meanwhile_is_not_sent(receiver, endpoint_for, settings):
    endpoint = endpoint_for(receiver)
    with committed():
        [delivery] = webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 1}})])
        webhook_endpoint_update(endpoint=endpoint, enabled=False, actor=COMMAND)

    delivery.refresh_from_db()
    assert receiver.received == []
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "failed",
        0,
        "not sent: the endpoint is disabled",
    )


def test_an_unreachable_receiver_is_logged_as_such(endpoint_for, settings, receiver):
    settings.WEBHOOKS_MAX_ATTEMPTS = 1
    endpoint = endpoint_for(receiver)
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on its port any more

    with committed():
        webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 1}})])

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "failed" and delivery.response_status is None
    assert delivery.last_error.startswith("ConnectError")


def test_the_sweep_sends_a_delivery_whose_message_was_lost_and_leaves_recent_ones(receiver, endpoint_for):
    endpoint = endpoint_for(receiver)
    # Recorded, but the transaction never commits here: no message is sent (as when the broker is down).
    lost, recent = (
        webhook_events_record(type="memory.indexed", items=[(uid, {"memory": {"id": n}})])[0]
        for n, uid in enumerate(("alice", "ben"))
    )
    WebhookDelivery.objects.filter(id=lost.id).update(next_attempt_at=timezone.now() - timedelta(minutes=16))

    with committed():
        swept = webhook_sweep()

    assert swept == 1 and [hook.json["uid"] for hook in receiver.received] == ["alice"]
    statuses = dict(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("id", "status"))
    assert statuses == {lost.id: "delivered", recent.id: "pending"}
