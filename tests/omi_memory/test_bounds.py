"""The input bounds (omi_memory/bounds.py), through every way data comes in: the API, the dashboard's
forms, the import command and the services. Each bound: a clear 4xx in the one error shape (or a
form error), nothing stored, and nothing that breaks the pages and answers that read the data later.
The date bug only showed on PostgreSQL (which stores the year 10000 that Python cannot read back):
CI runs these there."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.management import call_command

from memories.models import Memory
from memories.parts.extractors.base import ActionItemData, EventData, Extraction
from memories.services import memory_build
from omi_memory import bounds
from omi_memory.errors import ValidationFailed
from search.models import SearchLog
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db

VALID = {"uid": "alice", "transcript": BUDGET}


def refused(response, status: int = 422) -> dict:
    """The one error shape with `status`; returns its inner object."""
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# Dates and times -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("created_at", "9999-12-31T23:59:59-14:00"),  # the year 10000 in UTC: stored by PostgreSQL, unreadable
        ("started_at", "0001-01-01T00:00:00+14:00"),  # 1 BC in UTC
        ("created_at", "1969-12-31T23:59:59Z"),
        ("created_at", "1970-01-01T00:00:00+01:00"),  # written in 1970, 1969 in UTC
        ("finished_at", "2100-01-01T00:00:00Z"),
        ("created_at", "2099-12-31T23:00:00-02:00"),  # written in 2099, 2100 in UTC
        ("created_at", "2026-03-02T09:00:00"),  # no offset: which time is it?
        ("created_at", 1767225600),  # a number is not a date
    ],
)
def test_a_time_out_of_range_or_without_offset_is_refused_and_the_list_still_answers(api, field, value):
    response = api.post("/memories", {**VALID, field: value})

    error = refused(response)
    assert error["code"] == "validation_error" and error["message"].startswith(f"{field}: ")
    assert Memory.objects.count() == 0
    assert api.get("/memories").status_code == 200


def test_the_ends_of_the_range_are_accepted_and_any_offset_is_stored_in_utc(api):
    first = api.post("/memories", {**VALID, "created_at": "1970-01-01T00:00:00Z"})
    last = api.post("/memories", {**VALID, "created_at": "2099-12-31T23:59:59.999999Z"})
    # PostgreSQL takes offsets up to 15:59 only; RFC 3339 allows 23:59: the time is kept in UTC.
    far_east = api.post("/memories", {**VALID, "created_at": "2026-05-01T23:30:00+21:15"})

    assert [r.status_code for r in (first, last, far_east)] == [201, 201, 201]
    assert far_east.json()["created_at"] == "2026-05-01T02:15:00Z"
    listed = api.get("/memories", starts_at="2026-05-01T02:00:00+23:59", ends_at="2026-05-02T00:00:00-23:00")
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["items"]] == [far_east.json()["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"starts_at": "0001-01-01T00:00:00+14:00"},
        {"ends_at": "9999-12-31T23:59:59-14:00"},
        {"starts_at": "2026-02-05T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"},
    ],
)
def test_list_filters_out_of_range_or_out_of_order_are_refused(api, params):
    assert refused(api.get("/memories", **params))["code"] == "validation_error"


def test_search_refuses_times_out_of_range(api):
    response = api.post("/search", {"uid": "alice", "query": "budget", "starts_at": "0001-01-01T00:00:00+14:00"})

    assert refused(response)["message"].startswith("starts_at: ")
    assert SearchLog.objects.count() == 0


def test_the_date_range_is_a_setting(settings):
    settings.DATES_FROM, settings.DATES_BEFORE = datetime(2020, 1, 1).date(), datetime(2030, 1, 1).date()

    memory_build(uid="alice", transcript=BUDGET, created_at=datetime(2029, 12, 31, 23, 59, tzinfo=UTC))
    with pytest.raises(ValidationFailed, match="before 2030-01-01T00:00:00Z"):
        memory_build(uid="alice", transcript=BUDGET, created_at=datetime(2030, 1, 1, tzinfo=UTC))


def test_memory_build_keeps_the_bounds_for_data_that_does_not_come_through_the_api():
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
    cases = [
        ({"created_at": far}, "created_at must be on or after"),
        ({"started_at": datetime(1969, 12, 31, tzinfo=UTC)}, "started_at must be on or after"),
        ({"transcript": "A: a\x00b"}, "transcript contains a NUL character"),
        ({"transcript": "A: a\ud800b"}, "transcript contains a lone surrogate"),
        ({"external_id": "x\x00"}, "external_id contains a NUL character"),
        ({"external_id": "x" * 201}, "external_id is longer than 200"),
        ({"language": "e"}, "language must have 2 to 16"),
        ({"language": "en\x00"}, "language contains a NUL character"),
        ({"transcript": " \u3000\ufeff\n"}, "transcript is empty"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            memory_build(**{**VALID, **fields})
    offset = datetime(2026, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=21, minutes=15)))
    assert memory_build(**VALID, created_at=offset).created_at == datetime(2026, 5, 1, 2, 15, tzinfo=UTC)


def test_dates_the_extractor_finds_out_of_range_are_dropped():
    far = datetime(9999, 1, 1, tzinfo=UTC)
    extraction = Extraction(
        title="Tea\x00 time",
        action_items=[
            ActionItemData("Book it", due_at=far),
            ActionItemData("Pay", due_at=datetime(2026, 5, 1, tzinfo=UTC)),
        ],
        events=[EventData("Launch", start=far), EventData("Tea", start=datetime(2026, 5, 1, tzinfo=UTC))],
    ).cleaned()

    assert extraction.title == "Tea time"
    assert [a.due_at for a in extraction.action_items] == [None, datetime(2026, 5, 1, tzinfo=UTC)]
    assert [e.title for e in extraction.events] == ["Tea"]


# Text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body",
    [
        ("/memories", {**VALID, "transcript": "A: a\x00b"}),
        ("/memories", {**VALID, "language": "e\x00"}),
        ("/memories", {**VALID, "external_id": "ext\x00"}),
        ("/memories/batch", {"memories": [VALID, {**VALID, "transcript": "A: \x00"}]}),
        ("/search", {"uid": "alice", "query": "budget\x00"}),
        ("/search", {"uid": "alice", "queries": ["budget", "\x00"], "strategy": "multi_query"}),
    ],
)
def test_a_nul_character_in_any_string_is_refused_and_nothing_is_stored(api, path, body):
    error = refused(api.post(path, body))

    assert "NUL character" in error["message"]
    assert Memory.objects.count() == 0 and SearchLog.objects.count() == 0


def test_a_lone_surrogate_is_refused(api):
    response = api.post("/memories", raw='{"uid": "alice", "transcript": "A: caf\\ud800 ok"}')

    assert refused(response)["message"].startswith("transcript: ")
    assert Memory.objects.count() == 0


def test_a_note_with_a_nul_character_is_refused(api, remember):
    remember("alice", DENTIST)
    search = api.post("/search", {"uid": "alice", "query": "crown"}).json()
    hit = search["results"][0]["memory"]["id"]

    response = api.post(
        "/search/feedback", {"search_id": search["search_id"], "memory_id": hit, "relevant": True, "note": "\x00"}
    )

    assert "NUL character" in refused(response)["message"]


# Numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"limit": 10**30}, "limit: Input should be less than or equal to 100"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"offset": 2**63}, "offset: Input should be less than or equal to 1000000000"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
    ],
)
def test_limit_and_offset_out_of_range_are_refused(api, params, message):
    assert refused(api.get("/memories", **params))["message"] == message


def test_the_last_offset_answers_an_empty_page(api):
    response = api.get("/memories", offset=bounds.MAX_OFFSET, limit=bounds.MAX_LIMIT)

    assert response.status_code == 200 and response.json()["items"] == []


@pytest.mark.parametrize("method", ["get", "delete"])
def test_a_memory_id_past_a_bigint_is_refused(api, method):
    response = getattr(api, method)(f"/memories/{2**63}")

    assert refused(response)["message"].startswith("memory_id: Input should be less than or equal to")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"uid": "alice", "query": "budget", "k": "5"}, "k"),
        ({"uid": "alice", "query": "budget", "k": True}, "k"),
        ({"uid": "alice", "query": "budget", "time_decay": False}, "time_decay"),
        ({"uid": "alice", "query": "budget", "k": 101}, "k"),
    ],
)
def test_search_numbers_are_json_numbers_in_range(api, body, field):
    assert refused(api.post("/search", body))["message"].startswith(f"{field}: ")


def test_feedback_refuses_ids_past_a_bigint_and_booleans_that_are_numbers(api):
    huge = api.post("/search/feedback", {"search_id": 2**63, "memory_id": 1, "relevant": True})
    numeric = api.post("/search/feedback", {"search_id": 1, "memory_id": 1, "relevant": 0})

    assert refused(huge)["message"].startswith("search_id: ")
    assert refused(numeric)["message"].startswith("relevant: ")


# Bodies and errors -----------------------------------------------------------------------------


def test_a_body_over_the_upload_limit_gets_413_and_nothing_is_stored(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000

    response = api.post("/memories", {**VALID, "transcript": "A: hello there.\n" * 1000})

    error = refused(response, 413)
    assert error["code"] == "request_too_large" and "10000 bytes" in error["message"]
    assert Memory.objects.count() == 0


def test_error_details_are_capped_whatever_the_body_holds(api):
    unknown = {f"key{i}": i for i in range(5000)}
    long_key = {"k" * 1_000_000: 1}

    many = api.post("/memories", {**VALID, **unknown})
    one_long = api.post("/memories", {**VALID, **long_key})

    error = refused(many)
    assert len(error["details"]) == bounds.MAX_ERROR_DETAILS
    assert "and 4999 more errors" in error["message"]
    assert len(many.content) < 10_000 and len(one_long.content) < 2_000
    assert Memory.objects.count() == 0


# Operations only a key of the admin scope may call: any other key gets 403 whatever the id.
ADMIN_ONLY = {"/api/v1/vectors/memories/{memory_id}"}


def test_every_operation_documents_the_errors_it_may_answer(api):
    schema = api.client.get("/api/v1/openapi.json").json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"400", "401", "413", "422"} <= documented, (method, path)
            if "{memory_id}" in path:  # another user's memory is not found, never "forbidden" (no leak)
                assert "404" in documented, (method, path)
                assert "403" not in documented or path in ADMIN_ONLY, (method, path)
    moment = schema["components"]["schemas"]["MemoryIn"]["properties"]["created_at"]["anyOf"][0]
    assert moment["format"] == "date-time" and moment["pattern"] == bounds.datetime_pattern()


# The dashboard ---------------------------------------------------------------------------------


def test_the_memory_list_says_a_date_out_of_range_is_and_still_lists(signed_in, remember):
    remember("alice", BUDGET)
    admin = signed_in("admin")

    page = admin.get("/memories/", {"starts": "0001-01-01", "ends": "9999-12-31", "q": "a\x00"})

    assert page.status_code == 200
    text = page.content.decode()
    assert "Start date: This date must be from 1970-01-01 to 2099-12-31" in text
    assert "End date: This date must be from 1970-01-01" in text
    assert 'min="1970-01-01"' in text and 'max="2099-12-31"' in text


def test_the_search_page_refuses_a_date_out_of_range(signed_in, remember):
    remember("alice", BUDGET)
    analyst = signed_in("analyst")

    page = analyst.get("/search/", {"uid": "alice", "query": "budget", "starts": "9999-01-01"})

    assert page.status_code == 400 and "Start date: This date must be from 1970-01-01" in page.content.decode()
    assert SearchLog.objects.count() == 0


def test_dashboard_ids_past_a_bigint_are_refused_not_a_server_error(signed_in):
    admin = signed_in("admin")

    judged = admin.post("/search/judge/", {"search_id": 2**63, "memory_id": 1, "relevant": "1"})
    retried = admin.post("/pipeline/retry/", {"memory_id": 2**63})
    clustered = admin.post("/clusters/run/", {"uid": "alice", "k_max": 10**30})

    assert judged.status_code == 400 and "Search id" in judged.content.decode()
    assert retried.status_code == 302
    assert clustered.status_code == 400


@pytest.mark.parametrize("path", [f"/memories/{2**63}/", f"/memories/{10**30}/", f"/clusters/{2**63}/"])
def test_a_page_for_an_id_past_a_bigint_is_not_found(signed_in, path):
    assert signed_in("admin").get(path).status_code == 404


# The import ------------------------------------------------------------------------------------


def test_import_skips_lines_out_of_bounds_and_says_why(tmp_path, capsys):
    lines = [
        {"uid": "alice", "transcript": BUDGET, "memory_id": "ok"},
        {"uid": "alice", "transcript": "A: \u0000", "memory_id": "nul"},
        {"uid": "alice", "transcript": BUDGET, "memory_id": "far", "created_at": "9999-12-31T23:59:59-14:00"},
        {"uid": "alice", "transcript": BUDGET, "memory_id": "lang", "language": "x" * 17},
    ]
    path = tmp_path / "memories.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))

    call_command("import_memories", str(path))

    err = capsys.readouterr().err
    assert "line 2: skipped: transcript contains a NUL character" in err
    assert "line 3: skipped: created_at must be on or after 1970-01-01" in err
    assert "line 4: skipped: language must have 2 to 16 characters" in err
    assert list(Memory.objects.values_list("external_id", flat=True)) == ["ok"]
