from datetime import UTC, datetime, timedelta

import pytest

from memories.models import Memory
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    """The one error shape; returns its inner object."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]


# Without Redis the pipeline runs in-process when the create commits, so the answer is the memory
# processed: that needs real commits.
@pytest.mark.django_db(transaction=True)
def test_create_returns_the_indexed_memory_with_its_structured_data(api):
    response = api.post(
        "/memories",
        {
            "uid": "alice",
            "transcript": DENTIST,
            "source": "openglass",
            "started_at": "2026-03-02T09:00:00Z",
            "finished_at": "2026-03-02T09:20:00Z",
            "external_id": "rec-1",
        },
    )

    assert response.status_code == 201
    memory = response.json()
    assert memory["status"] == "indexed"
    assert memory["source"] == "openglass" and memory["external_id"] == "rec-1"
    assert memory["created_at"] == "2026-03-02T09:00:00Z"  # defaults to started_at
    assert memory["category"] == "health" and memory["title"] and memory["emoji"]
    assert memory["action_items"] and memory["events"]
    assert memory["events"][0]["start"].startswith("2026-03-03T15:00")  # the next Tuesday, 3pm
    fetched = api.get(f"/memories/{memory['id']}").json()
    assert fetched == memory


def test_batch_creates_every_memory(api):
    response = api.post(
        "/memories/batch",
        {"memories": [{"uid": "alice", "transcript": t} for t in (BUDGET, STANDUP, RECITAL)]},
    )

    assert response.status_code == 201
    items = [api.get(f"/memories/{m['id']}").json() for m in response.json()["items"]]
    assert [m["status"] for m in items] == ["indexed"] * 3
    assert {m["category"] for m in items} >= {"finance", "work"}


def test_list_filters_and_paginates(api):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for day, (uid, transcript, source) in enumerate(
        [("alice", DENTIST, "omi"), ("alice", BUDGET, "phone"), ("alice", STANDUP, "omi"), ("bob", GARDEN, "omi")]
    ):
        api.post(
            "/memories",
            {
                "uid": uid,
                "transcript": transcript,
                "source": source,
                "created_at": (base + timedelta(days=day)).isoformat(),
            },
        )

    page = api.get("/memories", uid="alice", limit=2).json()
    assert page["count"] == 3 and len(page["items"]) == 2
    assert [m["created_at"][:10] for m in page["items"]] == ["2026-01-03", "2026-01-02"]  # newest first
    rest = api.get("/memories", uid="alice", limit=2, offset=2).json()["items"]
    assert [m["created_at"][:10] for m in rest] == ["2026-01-01"]

    assert [m["source"] for m in api.get("/memories", uid="alice", source="phone").json()["items"]] == ["phone"]
    assert {m["category"] for m in api.get("/memories", category="health").json()["items"]} == {"health"}
    window = api.get("/memories", starts_at="2026-01-02T00:00:00Z", ends_at="2026-01-03T12:00:00Z").json()
    assert sorted(m["created_at"][:10] for m in window["items"]) == ["2026-01-02", "2026-01-03"]
    assert api.get("/memories", status="failed").json()["count"] == 0
    assert api.get("/memories").json()["count"] == 4


def test_reprocess_runs_the_pipeline_again(api):
    created = api.get(f"/memories/{api.post('/memories', {'uid': 'alice', 'transcript': BUDGET}).json()['id']}").json()

    response = api.post(f"/memories/{created['id']}/reprocess")

    assert response.status_code == 202
    again = api.get(f"/memories/{created['id']}").json()
    assert again["status"] == "indexed" and again["attempts"] == 1
    assert again["indexed_at"] > created["indexed_at"]


def test_a_memory_being_processed_cannot_be_reprocessed(api):
    created = api.post("/memories", {"uid": "alice", "transcript": BUDGET}).json()
    lease = datetime.now(UTC) + timedelta(minutes=1)  # its worker is alive: it renews the lease
    Memory.objects.filter(id=created["id"]).update(status="processing", claimed_at=datetime.now(UTC), lease_until=lease)

    response = api.post(f"/memories/{created['id']}/reprocess")

    assert response.status_code == 409
    assert error(response)["code"] == "conflict"


def test_the_same_external_id_twice_is_a_conflict_and_stores_nothing_new(api):
    api.post("/memories", {"uid": "alice", "transcript": BUDGET, "external_id": "x-1"})

    again = api.post("/memories", {"uid": "alice", "transcript": STANDUP, "external_id": "x-1"})
    batch = api.post(
        "/memories/batch",
        {
            "memories": [
                {"uid": "alice", "transcript": STANDUP, "external_id": "x-2"},
                {"uid": "alice", "transcript": RECITAL, "external_id": "x-1"},
            ]
        },
    )

    assert again.status_code == 409 and error(again)["code"] == "duplicate_external_id"
    assert batch.status_code == 409
    assert Memory.objects.count() == 1
    assert api.post("/memories", {"uid": "bob", "transcript": BUDGET, "external_id": "x-1"}).status_code == 201


def test_openapi_docs_are_served(client, db):
    assert client.get("/api/v1/docs").status_code == 200
    schema = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/memories", "/api/v1/memories/batch", "/api/v1/search"} <= set(schema["paths"])


# Bad input: a 4xx in the one error shape, and nothing stored.

VALID = {"uid": "alice", "transcript": BUDGET}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"uid": "alice", "transcript": ""}, "transcript: Value error, must not be empty or only spaces"),
        ({"uid": "alice", "transcript": " \n\t  "}, "transcript: Value error, must not be empty or only spaces"),
        ({"uid": "alice"}, "transcript: Field required"),
        ({"transcript": BUDGET}, "uid: Field required"),
        ({"uid": "", "transcript": BUDGET}, "uid: String should match pattern"),
        ({"uid": "bad uid/with slash", "transcript": BUDGET}, "uid: String should match pattern"),
        ({**VALID, "colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({**VALID, "source": "carrier-pigeon"}, "source: Input should be 'omi'"),
        ({**VALID, "started_at": "last tuesday"}, "started_at: Value error, must be a date and time with an offset"),
        ({**VALID, "created_at": "2026-13-45T00:00:00Z"}, "created_at: Value error, must be a date and time with"),
        # Two fields out of order: the memory as a whole is refused (no field location), and says why.
        (
            {**VALID, "started_at": "2026-01-02T10:00:00Z", "finished_at": "2026-01-02T09:00:00Z"},
            "Value error, finished_at is before started_at",
        ),
        ({**VALID, "transcript": 42}, "transcript: Input should be a valid string"),
    ],
)
def test_bad_memories_get_a_422_that_names_the_field_and_store_nothing(api, body, message):
    response = api.post("/memories", body)

    assert response.status_code == 422
    err = error(response)
    assert err["code"] == "validation_error"
    assert err["message"].startswith(message)
    assert Memory.objects.count() == 0


def test_a_transcript_over_the_size_limit_is_refused(api, settings):
    response = api.post("/memories", {"uid": "alice", "transcript": "Alice: hi there.\n" * 30_000})  # 510,000

    assert response.status_code == 422
    assert "transcript" in error(response)["message"]
    assert Memory.objects.count() == 0


def test_one_bad_memory_in_a_batch_stores_none_of_them(api):
    response = api.post("/memories/batch", {"memories": [VALID, VALID, {"uid": "alice", "transcript": "  "}]})

    assert response.status_code == 422
    assert error(response)["details"][0]["loc"][-2:] == ["2", "transcript"]
    assert Memory.objects.count() == 0


@pytest.mark.parametrize("memories", [[], [VALID] * 101])
def test_a_batch_must_hold_1_to_100_memories(api, memories):
    response = api.post("/memories/batch", {"memories": memories})

    assert response.status_code == 422
    assert Memory.objects.count() == 0


@pytest.mark.parametrize(
    "raw, status, code",
    [
        ("not json", 400, "invalid_json"),  # does not parse
        ('{"uid": "alice",', 400, "invalid_json"),
        ("", 400, "invalid_json"),
        ("[1, 2, 3]", 422, "validation_error"),  # parses, but is not an object
        ('"just a string"', 422, "validation_error"),
        ("null", 422, "validation_error"),
    ],
)
def test_a_body_that_does_not_parse_is_a_400_and_json_that_is_not_an_object_a_422(api, raw, status, code):
    response = api.post("/memories", raw=raw)

    assert response.status_code == status
    assert error(response)["code"] == code
    assert Memory.objects.count() == 0


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "omk_wrong"}, {"X-API-Key": ""}])
def test_a_missing_or_wrong_key_is_refused_everywhere(client, headers, remember):
    memory = remember("alice", BUDGET)
    calls = [
        client.post("/api/v1/memories", VALID, content_type="application/json", headers=headers),
        client.post("/api/v1/memories/batch", {"memories": [VALID]}, content_type="application/json", headers=headers),
        client.get("/api/v1/memories", headers=headers),
        client.get(f"/api/v1/memories/{memory.id}", headers=headers),
        client.delete(f"/api/v1/memories/{memory.id}", headers=headers),
        client.post(f"/api/v1/memories/{memory.id}/reprocess", headers=headers),
        client.post(
            "/api/v1/search", {"uid": "alice", "query": "budget"}, content_type="application/json", headers=headers
        ),
    ]

    for response in calls:
        assert response.status_code == 401
        assert error(response)["code"] == "unauthorized"
    assert Memory.objects.count() == 1
    assert Memory.objects.get().status == "indexed"


def test_an_unknown_memory_is_a_404(api):
    for response in (
        api.get("/memories/999999"),
        api.delete("/memories/999999"),
        api.post("/memories/999999/reprocess"),
    ):
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"


def test_bad_list_filters_are_refused(api):
    for params in (
        {"status": "done"},
        {"category": "cooking"},
        {"starts_at": "soon"},
        {"starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"},
        {"limit": -1},
    ):
        response = api.get("/memories", **params)
        assert response.status_code == 422, params
        assert error(response)["code"] == "validation_error"


def test_unknown_endpoints_and_methods_get_the_error_shape(api):
    missing = api.get("/nothing-here")
    wrong_id = api.get("/memories/not-a-number")
    wrong_method = api.client.put("/api/v1/memories", "{}", content_type="application/json")

    assert missing.status_code == 404 and error(missing)["code"] == "not_found"
    assert wrong_id.status_code == 404 and error(wrong_id)["code"] == "not_found"
    assert wrong_method.status_code == 405 and error(wrong_method)["code"] == "method_not_allowed"
