"""The webhooks API: an admin key registers, lists, changes and deletes endpoints and reads their
delivery logs; a key scoped to one uid may do none of it; the secret is shown once; bad input is a
422 in the one error shape; every change is in the audit trail."""

import pytest

from memories.models import AuditEvent
from tests.support.transactions import committed
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_events_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook_body(receiver):
    return {"url": receiver.url, "events": ["memory.indexed", "memory.deleted"], "description": "app backend"}


def test_an_admin_key_registers_an_endpoint_and_sees_its_secret_once(api, hook_body):
    created = api.post("/webhooks/endpoints", hook_body)

    assert created.status_code == 201, created.json()
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) > 40
    assert endpoint["secret_hint"] == endpoint["secret"][:10] + "…"
    assert (endpoint["url"], endpoint["events"], endpoint["uid"], endpoint["enabled"]) == (
        hook_body["url"],
        ["memory.indexed", "memory.deleted"],
        "",
        True,
    )
    listed = api.get("/webhooks/endpoints").json()["items"]
    one = api.get(f"/webhooks/endpoints/{endpoint['id']}").json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0] and "secret" not in one
    assert WebhookEndpoint.objects.get().secret == endpoint["secret"]


def test_a_given_secret_is_kept_and_a_new_one_is_made_on_request(api, hook_body):
    created = api.post("/webhooks/endpoints", {**hook_body, "secret": "my-own-secret-of-some-length"}).json()
    assert created["secret"] == "my-own-secret-of-some-length"

    renewed = api.patch(f"/webhooks/endpoints/{created['id']}", {"new_secret": True})
    changed = api.patch(f"/webhooks/endpoints/{created['id']}", {"description": "renamed"})

    assert renewed.status_code == 200 and renewed.json()["secret"].startswith("whsec_")
    assert renewed.json()["secret"] != created["secret"] == "my-own-secret-of-some-length"
    assert changed.status_code == 200 and "secret" not in changed.json() and changed.json()["description"] == "renamed"
    assert WebhookEndpoint.objects.get().secret == renewed.json()["secret"]


def test_an_endpoint_is_changed_disabled_and_deleted_with_its_log(api, hook_body, receiver):
    endpoint = api.post("/webhooks/endpoints", hook_body).json()
    path = f"/webhooks/endpoints/{endpoint['id']}"
    with committed():
        webhook_events_record(type="memory.indexed", items=[("alice", {"memory": {"id": 1}})])

    changed = api.patch(path, {"events": ["duplicate.found"], "uid": "alice", "enabled": False}).json()
    [delivery] = api.get(f"{path}/deliveries").json()["items"]

    assert (changed["events"], changed["uid"], changed["enabled"]) == (["duplicate.found"], "alice", False)
    assert changed["disabled_reason"].startswith("disabled by ")
    assert delivery["event_type"] == "memory.indexed" and delivery["uid"] == "alice"
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == ("delivered", 1, 200)
    assert api.get(f"{path}/deliveries", status="failed").json() == {"items": [], "count": 0}
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404 and api.get(f"{path}/deliveries").status_code == 404
    actions = list(AuditEvent.objects.filter(target_type="webhook").order_by("id").values_list("action", flat=True))
    assert actions == ["webhook.create", "webhook.update", "webhook.delete"]
    assert all("whsec_" not in str(e.details) for e in AuditEvent.objects.all())  # never a secret


def test_a_key_scoped_to_one_uid_may_not_touch_webhooks(api, api_for, hook_body):
    endpoint = api.post("/webhooks/endpoints", hook_body).json()
    path = f"/webhooks/endpoints/{endpoint['id']}"
    alice = api_for("alice")

    answers = [
        alice.post("/webhooks/endpoints", {**hook_body, "uid": "alice"}),
        alice.get("/webhooks/endpoints"),
        alice.get(path),
        alice.patch(path, {"enabled": False}),
        alice.get(f"{path}/deliveries"),
        alice.delete(path),
    ]

    for answer in answers:
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "admin_required", answer.json()
    assert WebhookEndpoint.objects.get().enabled


def test_bad_input_is_a_422_in_the_one_error_shape(api, hook_body, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    cases = {
        "loopback": {**hook_body, "url": "http://127.0.0.1:9/hook"},
        "scheme": {**hook_body, "url": "gopher://93.184.215.14/hook"},
        "no events": {**hook_body, "events": []},
        "unknown event": {**hook_body, "events": ["memory.exploded"]},
        "short secret": {**hook_body, "secret": "short"},
        "unknown field": {**hook_body, "retries": 3},
    }

    answers = {name: api.post("/webhooks/endpoints", body) for name, body in cases.items()}

    for name, answer in answers.items():
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error", name
    assert "loopback address" in answers["loopback"].json()["error"]["message"]
    assert api.patch("/webhooks/endpoints/999", {"enabled": True}).status_code == 404
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_statuses_are_the_models_and_leave_the_memorys_statuses_alone(client):
    """The OpenAPI document names each enum once: the delivery log's filter must not replace the
    memory list's `status` (seen: the fuzzer sent `status=pending` to /memories, as documented)."""
    from webhooks.models import WebhookDelivery

    document = client.get("/api/v1/openapi.json").json()

    def status_values(path: str) -> list[str]:
        [parameter] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "status"]
        schema = parameter["schema"]
        schema = schema.get("anyOf", [schema])[0]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema["enum"]

    assert status_values("/api/v1/memories") == ["queued", "processing", "indexed", "failed", "deleted"]
    assert status_values("/api/v1/webhooks/endpoints/{endpoint_id}/deliveries") == WebhookDelivery.Status.values
