"""The pipeline's figures and retries and the index's figures over the API, and the admin scope
of an API key (made by command or on /keys/) that the admin-only operations need."""

import re
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.urls import reverse

from memories.models import ApiKey, AuditEvent, LocalVector, Memory, MemoryVector
from memories.services import api_key_create
from omi_memory.actors import Actor
from omi_memory.errors import ValidationFailed
from tests.memories.test_api import error
from tests.support.transcripts import DENTIST

pytestmark = pytest.mark.django_db


def failed(uid: str, transcript: str = DENTIST) -> Memory:
    """A memory the pipeline gave up on, as it leaves it (fast: no pipeline run)."""
    return Memory.objects.create(
        uid=uid,
        transcript=transcript,
        status=Memory.Status.FAILED,
        failure_reason="extractor: timed out",
        created_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
    )


def test_an_admin_key_is_made_by_command_or_on_the_keys_page_and_is_always_for_every_user(signed_in, capsys):
    call_command("create_api_key", "--name", "ops", "--admin")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    admin = signed_in("admin")

    page = admin.post(reverse("api_key_create"), {"name": "ops 2", "admin": "on"})
    refused = admin.post(reverse("api_key_create"), {"name": "ops 3", "uid": "alice", "admin": "on"})

    assert ApiKey.objects.get(key_hash=ApiKey.hash(raw)).scope == "admin"
    assert page.status_code == 200 and ApiKey.objects.get(name="ops 2").admin
    assert refused.status_code == 400 and "an admin key acts for every user" in refused.content.decode()
    assert not ApiKey.objects.filter(name="ops 3").exists()
    with pytest.raises(ValidationFailed):
        api_key_create(name="x", uid="alice", admin=True, actor=Actor.command())
    call_command("list_api_keys")
    listing = capsys.readouterr().out
    assert re.search(r"ops 2\s+admin\s+active", listing) and re.search(r"ops\s+admin\s+active", listing)
    assert AuditEvent.objects.filter(action="api_key.create", details__admin=True).count() == 2


def test_the_pipeline_figures_of_a_scoped_key_are_its_users_alone(api, api_for, remember):
    remember("alice", DENTIST)
    failed("alice")
    failed("bob")
    failed("bob")

    mine = api_for("alice").get("/pipeline")
    everyone = api.get("/pipeline").json()
    bobs = api.get("/pipeline", uid="bob").json()

    assert mine.status_code == 200
    assert mine.json()["counts"]["indexed"] == 1 and mine.json()["failed_total"] == 1
    assert {m["uid"] for m in mine.json()["failed"]} == {"alice"}
    assert mine.json()["failed"][0]["failure_reason"] == "extractor: timed out"
    assert mine.json()["indexed_last_hour"] == 1 and sum(mine.json()["buckets"]) == 1
    assert everyone["failed_total"] == 3 and bobs["failed_total"] == 2 and bobs["counts"]["indexed"] == 0
    other = api_for("alice").get("/pipeline", uid="bob")
    assert other.status_code == 403 and error(other)["code"] == "uid_forbidden"


def test_retrying_a_failed_memory_answers_202_with_its_url_where_it_is_then_indexed(api_for):
    memory = failed("alice")

    answer = api_for("alice").post("/pipeline/retry", {"memory_id": memory.id})

    assert answer.status_code == 202
    assert answer.json() == {"queued": 1, "status_url": f"/api/v1/memories/{memory.id}"}
    assert answer["Location"] == answer.json()["status_url"]
    # in-process, the pipeline ran when the retry committed
    assert api_for("alice").get(f"/memories/{memory.id}").json()["status"] == "indexed"
    assert AuditEvent.objects.get(action="memory.retry_failed").actor_type == "api_key"


def test_a_retry_is_refused_for_another_users_memory_and_for_one_not_failed(api_for, remember):
    bobs = failed("bob")
    indexed = remember("alice", DENTIST)

    other = api_for("alice").post("/pipeline/retry", {"memory_id": bobs.id})
    not_failed = api_for("alice").post("/pipeline/retry", {"memory_id": indexed.id})

    assert other.status_code == 404 and error(other)["code"] == "not_found"
    assert not_failed.status_code == 409 and error(not_failed)["code"] == "not_failed"
    assert Memory.objects.get(id=bobs.id).status == "failed"


def test_retrying_every_failure_needs_the_admin_scope(api, api_for, api_admin):
    for uid in ("alice", "bob"):
        failed(uid)

    refusals = [client.post("/pipeline/retry", {}) for client in (api, api_for("alice"))]
    answer = api_admin.post("/pipeline/retry", {})

    assert [r.status_code for r in refusals] == [403, 403]
    assert {error(r)["code"] for r in refusals} == {"admin_required"}
    assert answer.status_code == 202 and answer.json() == {"queued": 2, "status_url": "/api/v1/pipeline"}
    assert answer["Location"] == "/api/v1/pipeline"
    assert set(Memory.objects.values_list("status", flat=True)) == {"indexed"}


def test_the_index_figures_need_the_admin_scope_and_agree_with_the_vectors_page(api, api_for, api_admin, remember):
    remember("alice", DENTIST)
    remember("bob", DENTIST.replace("Alice", "Bob"))
    refusals = [api.get("/vectors"), api_for("alice").get("/vectors")]
    figures = api_admin.get("/vectors")

    assert [r.status_code for r in refusals] == [403, 403] and error(refusals[0])["code"] == "admin_required"
    assert figures.status_code == 200
    body = figures.json()
    vectors = MemoryVector.objects.count()
    assert body["store"] == "local" and body["namespace"] == "ns1" and body["identity"] == "local/ns1"
    assert body["database_vectors"] == vectors and body["store_vectors"] == vectors and body["error"] == ""
    assert body["record"]["model"] == MemoryVector.objects.first().model and body["record"]["dim"] == 384
    assert body["stats"]["namespaces"] == {"ns1": vectors}
    assert sum(row["database"] for row in body["kinds"]) == vectors
    assert all(row["store"] == row["database"] for row in body["kinds"])
    assert [(u["uid"], u["memories"], u["indexed"]) for u in body["users"]] == [("alice", 1, 1), ("bob", 1, 1)]


def test_an_admin_looks_up_a_memorys_vectors_as_the_store_holds_them_and_their_nearest(api, api_admin, remember):
    dentist = remember("alice", DENTIST)
    remember("alice", DENTIST.replace("crown", "filling"))
    rows = list(MemoryVector.objects.filter(memory=dentist).order_by("position"))

    found = api_admin.get(f"/vectors/memories/{dentist.id}").json()
    chosen = api_admin.get(f"/vectors/memories/{dentist.id}", vector=rows[-1].vector_id).json()

    assert [v["vector_id"] for v in found["vectors"]] == [row.vector_id for row in rows]
    assert all(v["metadata"]["uid"] == "alice" for v in found["vectors"]) and found["error"] == ""
    assert found["memory"]["id"] == dentist.id and found["chosen"] == rows[0].vector_id
    assert found["neighbours"][0]["vector_id"] == rows[0].vector_id and found["neighbours"][0]["score"] > 0.99
    assert {n["memory"]["uid"] for n in found["neighbours"]} == {"alice"}
    assert chosen["chosen"] == rows[-1].vector_id and chosen["neighbours"][0]["vector_id"] == rows[-1].vector_id
    refused = api.get(f"/vectors/memories/{dentist.id}")
    assert refused.status_code == 403 and error(refused)["code"] == "admin_required"
    assert api_admin.get("/vectors/memories/999999").status_code == 404


def test_an_admin_key_starts_a_reconciliation_whose_status_url_says_what_it_found(api, api_admin, remember):
    remember("alice", DENTIST)
    LocalVector.objects.filter(record_id=MemoryVector.objects.first().vector_id).delete()  # lost by the store

    refused = api.post("/pipeline/reconcile", {"repair": True})
    answer = api_admin.post("/pipeline/reconcile", {"repair": True})

    assert refused.status_code == 403 and error(refused)["code"] == "admin_required"
    assert answer.status_code == 202 and answer["Location"] == answer.json()["status_url"]
    run = api_admin.client.get(answer["Location"]).json()
    assert run["status"] == "done" and run["trigger"] == "api" and run["started_by"].endswith("(admin)")
    assert (run["missing"], run["repaired"], run["orphaned"]) == (1, 1, 0)
    assert run["findings"][0]["kind"] == "missing"
    assert api.client.get(answer["Location"]).status_code == 403
    assert LocalVector.objects.count() == MemoryVector.objects.count()


def test_a_signed_in_dashboard_admin_trying_the_docs_has_the_admin_scope(signed_in):
    assert signed_in("admin").get("/api/v1/vectors").status_code == 200
    assert signed_in("analyst").get("/api/v1/vectors").status_code == 401  # no key: the API's 401
