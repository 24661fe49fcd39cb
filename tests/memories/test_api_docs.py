"""The API docs (/api/v1/docs): a signed-in admin may try the API there, and every example they
offer is accepted."""

import json

import pytest
from django.core.management.color import no_style
from django.db import connection

from memories.models import Memory
from search.models import SearchLog

pytestmark = pytest.mark.django_db

SEARCH = {"uid": "alice", "query": "dentist"}


def csrf_post(client, path: str, body: dict, *, token: str | None):
    headers = {"X-CSRFToken": token} if token else {}
    return client.post(f"/api/v1{path}", json.dumps(body), content_type="application/json", headers=headers)


def test_a_signed_in_admin_may_try_the_api_from_its_docs_with_the_csrf_token(signed_in):
    admin = signed_in("admin", csrf_checks=True)

    docs = admin.get("/api/v1/docs")
    token = admin.cookies["csrftoken"].value

    assert docs.status_code == 200 and 'data-api-csrf="true"' in docs.content.decode()
    answer = csrf_post(admin, "/search", SEARCH, token=token)
    assert answer.status_code == 200 and answer.json()["uid"] == "alice"
    assert SearchLog.objects.get().user == admin.user  # the search is logged as the admin's
    assert csrf_post(admin, "/search", SEARCH, token=None).status_code == 403  # no CSRF token: refused


def test_other_sessions_still_need_an_api_key(signed_in, client):
    analyst = signed_in("analyst", csrf_checks=True)
    analyst.get("/api/v1/docs")

    assert csrf_post(analyst, "/search", SEARCH, token=analyst.cookies["csrftoken"].value).status_code == 401
    assert csrf_post(client, "/search", SEARCH, token=None).status_code == 401
    assert not SearchLog.objects.exists()


def test_every_example_in_the_docs_is_accepted(api, dns):
    """Each request body's documented example, posted as it stands (the judgment's example names
    search 1 and memory 1, made here; the webhook's host resolves to a public address here)."""
    dns["hooks.example.com"] = ["93.184.215.14"]
    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    posted = {}
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody")
        if body:
            name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            posted[path.removeprefix("/api/v1")] = schemas[name]["example"]
    assert set(posted) == {"/memories", "/memories/batch", "/search", "/search/feedback", "/webhooks/endpoints"}
    Memory.objects.create(id=1, uid="alice", transcript="Alice: hello", status="indexed", searchable=True)
    SearchLog.objects.create(
        id=1, uid="alice", queries=["hello"], strategy="hybrid", results=[{"memory_id": 1, "score": 0.5}], latency_ms=1
    )
    with connection.cursor() as cursor:  # the next ids after those rows
        for statement in connection.ops.sequence_reset_sql(no_style(), [Memory, SearchLog]):
            cursor.execute(statement)

    statuses = {path: api.post(path, example).status_code for path, example in posted.items()}

    assert statuses == {
        "/memories": 201,
        "/memories/batch": 201,
        "/search": 200,
        "/search/feedback": 201,
        "/webhooks/endpoints": 201,
    }


def test_every_bound_of_a_number_is_stated_as_json_schema_states_it(client):
    """A client (or a fuzzer) reads `minimum`/`maximum`; a bound written as pydantic's `ge`/`le`
    is an unknown key to it, so an out-of-range value would look valid (seen: a negative half-life)."""
    document = client.get("/api/v1/openapi.json").json()
    half_life = document["components"]["schemas"]["SearchIn"]["properties"]["half_life_days"]["anyOf"][0]

    assert (half_life["minimum"], half_life["maximum"]) == (0.01, 36500)
    text = json.dumps(document)
    assert [key for key in ('"ge":', '"le":', '"gt":', '"lt":') if key in text] == []
