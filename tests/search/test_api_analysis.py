"""Clusters, duplicates and evaluation runs over the API: what /clusters/, /duplicates/ and
/evaluation/ show and do, with a key's uid scope and admin scope. Jobs answer 202 with a status
URL (in-process, the job has run when the answer comes; tests/search/test_api_jobs.py watches a
real worker take one from queued to done)."""

import pytest

from memories.models import AuditEvent, Memory
from search.models import ClusterRun, DuplicatePair, EvalRun
from tests.memories.test_api import error
from tests.support.memories import indexed_memory
from tests.support.transcripts import BUDGET, DENTIST

# Every test sees the same memories, made once for the module (what a test changes is rolled back).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memories")]

DENTIST_AGAIN = DENTIST.replace("next Tuesday at 3pm", "Tuesday next week at 3pm")


@pytest.fixture(scope="module")
def memories(shared_rows) -> dict[str, list[int]]:
    """Alice's dentist visit remembered twice and her budget talk; Bob's dentist visit twice: a
    duplicate pair each (found as they were indexed)."""
    with shared_rows():
        made = {
            "alice": [indexed_memory("alice", text).id for text in (DENTIST, DENTIST_AGAIN, BUDGET)],
            "bob": [indexed_memory("bob", text.replace("Alice", "Bob")).id for text in (DENTIST, DENTIST_AGAIN)],
        }
        assert sorted(DuplicatePair.objects.values_list("uid", flat=True)) == ["alice", "bob"]
        yield made


def at(api, url: str):
    """GET a URL the API gave (a status URL: the whole path)."""
    return api.client.get(url)


def pair_of(uid: str) -> DuplicatePair:
    return DuplicatePair.objects.get(uid=uid)


# Clusters


def test_a_clustering_answers_202_and_its_status_url_gives_the_run_its_clusters_and_their_members(api_for, memories):
    alice = api_for("alice")

    answer = alice.post("/clusters/runs", {"uid": "alice", "k": 2})

    assert answer.status_code == 202
    run_id = answer.json()["id"]
    assert answer.json()["status_url"] == answer["Location"] == f"/api/v1/clusters/runs/{run_id}"
    run = at(alice, answer["Location"]).json()
    assert run["status"] == "done" and run["uid"] == "alice" and run["k"] == 2 and run["memories"] == 3
    assert run["error"] == "" and run["finished_at"] and set(run["silhouettes"]) == {"2"}
    assert [c["index"] for c in run["clusters"]] == [0, 1] and all(c["label"] for c in run["clusters"])
    members = {
        c["index"]: alice.get(f"/clusters/runs/{run_id}/clusters/{c['index']}/members").json()["items"]
        for c in run["clusters"]
    }
    assert [len(members[c["index"]]) for c in run["clusters"]] == [c["size"] for c in run["clusters"]] == [2, 1]
    dentist = {m["memory"]["id"] for m in members[0]}
    assert dentist == set(memories["alice"][:2])  # the two dentist visits together, the budget alone
    assert all(isinstance(m["x"], float) and isinstance(m["y"], float) for m in members[0])
    assert AuditEvent.objects.get(action="clusters.run").actor_type == "api_key"


def test_a_scoped_key_sees_and_starts_only_its_users_clusterings(api, api_for, memories):
    alices = ClusterRun.objects.create(uid="alice", status="done", k=2, clusters=[], points=[])
    bobs = ClusterRun.objects.create(uid="bob", status="failed", error="too few")
    bob = api_for("bob")

    assert bob.get(f"/clusters/runs/{alices.id}").status_code == 404
    assert error(bob.get(f"/clusters/runs/{alices.id}/clusters/0/members"))["code"] == "not_found"
    refused = bob.post("/clusters/runs", {"uid": "alice"})
    assert refused.status_code == 403 and error(refused)["code"] == "uid_forbidden"
    assert error(bob.get("/clusters/runs", uid="alice"))["code"] == "uid_forbidden"
    assert [r["id"] for r in bob.get("/clusters/runs").json()["items"]] == [bobs.id]
    assert [r["id"] for r in api.get("/clusters/runs").json()["items"]] == [bobs.id, alices.id]
    assert [r["id"] for r in api.get("/clusters/runs", status="done").json()["items"]] == [alices.id]
    assert ClusterRun.objects.count() == 2


def test_members_wait_for_the_run_and_a_user_with_too_few_memories_is_refused(api):
    queued = ClusterRun.objects.create(uid="alice")

    waiting = api.get(f"/clusters/runs/{queued.id}/clusters/0/members")
    too_few = api.post("/clusters/runs", {"uid": "bob", "k_min": 2})
    out_of_order = api.post("/clusters/runs", {"uid": "alice", "k_min": 4, "k_max": 3})

    assert waiting.status_code == 409 and error(waiting)["code"] == "not_done"
    assert too_few.status_code == 409 and error(too_few)["code"] == "too_few_memories"
    assert "2 indexed memories" in error(too_few)["message"]
    assert out_of_order.status_code == 422 and "larger than the largest" in error(out_of_order)["message"]
    assert ClusterRun.objects.count() == 1


# Duplicates


def test_a_scan_answers_202_and_its_status_url_gives_what_it_found(api_for):
    alice = api_for("alice")

    answer = alice.post("/duplicates/scans", {})

    assert answer.status_code == 202
    scan = at(alice, answer["Location"]).json()
    assert answer.json()["status_url"] == answer["Location"] == f"/api/v1/duplicates/scans/{scan['id']}"
    assert scan["uid"] == "alice" and scan["status"] == "done" and scan["threshold"] == 0.95
    assert scan["counts"]["users"] == 1 and scan["counts"]["memories"] == 3 and scan["counts"]["pairs"] == 1
    assert at(api_for("bob"), answer["Location"]).status_code == 404


def test_a_scan_of_every_user_needs_the_admin_scope(api, api_for, api_admin):
    refused = api.post("/duplicates/scans", {"threshold": 0.9})
    answer = api_admin.post("/duplicates/scans", {"threshold": 0.9})

    assert refused.status_code == 403 and error(refused)["code"] == "admin_required"
    assert answer.status_code == 202 and answer.json()["uid"] == ""
    scan = at(api_admin, answer["Location"]).json()
    assert scan["status"] == "done" and scan["counts"]["users"] == 2 and scan["threshold"] == 0.9
    assert at(api_for("alice"), answer["Location"]).status_code == 404  # not a scan of alice alone
    assert api.post("/duplicates/scans", {"uid": "bob"}).status_code == 202  # one user: any key for them


def test_a_scoped_key_lists_and_reads_only_its_users_pairs(api, api_for):
    alice, bob = api_for("alice"), api_for("bob")

    listed = alice.get("/duplicates/pairs").json()

    assert [p["id"] for p in listed["items"]] == [pair_of("alice").id] and listed["count"] == 1
    pair = listed["items"][0]
    assert pair["status"] == "open" and pair["similarity"] >= 0.95 and pair["kept_id"] is None
    assert {pair["memory_a"]["uid"], pair["memory_b"]["uid"]} == {"alice"}
    assert alice.get("/duplicates/pairs", status="merged").json()["count"] == 0
    assert api.get("/duplicates/pairs").json()["count"] == 2
    assert [p["uid"] for p in api.get("/duplicates/pairs", uid="bob").json()["items"]] == ["bob"]
    assert bob.get(f"/duplicates/pairs/{pair['id']}").status_code == 404
    assert alice.get(f"/duplicates/pairs/{pair['id']}").json() == pair


def test_a_users_key_merges_unmerges_and_dismisses_its_pair(api_for, memories):
    alice = api_for("alice")
    pair = pair_of("alice")
    url = f"/duplicates/pairs/{pair.id}"

    merged = alice.post(f"{url}/merge", {"keep": pair.memory_a_id})

    assert merged.status_code == 200
    assert merged.json()["status"] == "merged" and merged.json()["kept_id"] == pair.memory_a_id
    assert alice.get(f"/memories/{pair.memory_b_id}").status_code == 404  # merged away
    again = alice.post(f"{url}/merge", {"keep": pair.memory_a_id})
    assert again.status_code == 409 and error(again)["code"] == "conflict"

    unmerged = alice.post(f"{url}/unmerge")

    assert unmerged.status_code == 200 and unmerged.json()["status"] == "open"
    assert alice.get(f"/memories/{pair.memory_b_id}").json()["status"] == "indexed"  # processed again

    dismissed = alice.post(f"{url}/dismiss")

    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    actions = AuditEvent.objects.filter(actor_type="api_key", target_ids=[pair.id]).values_list("action", flat=True)
    assert sorted(actions) == ["duplicates.dismiss", "duplicates.merge", "duplicates.unmerge"]


def test_resolving_another_users_pair_is_refused_without_the_admin_scope(api, api_for, api_admin, memories):
    pair = pair_of("alice")
    url = f"/duplicates/pairs/{pair.id}"

    other_user = api_for("bob").post(f"{url}/merge", {"keep": pair.memory_a_id})
    not_admin = [api.post(f"{url}/merge", {"keep": pair.memory_a_id}), api.post(f"{url}/dismiss")]
    not_in_pair = api_admin.post(f"{url}/merge", {"keep": memories["bob"][0]})

    assert other_user.status_code == 404 and error(other_user)["code"] == "not_found"
    assert [r.status_code for r in not_admin] == [403, 403] and error(not_admin[0])["code"] == "admin_required"
    assert not_in_pair.status_code == 409 and error(not_in_pair)["code"] == "not_in_pair"
    assert pair_of("alice").status == "open" and not Memory.objects.filter(status="deleted").exists()
    assert api_admin.post(f"{url}/dismiss").json()["status"] == "dismissed"


# Evaluation runs


def test_evaluation_runs_need_the_admin_scope(api, api_for, api_admin):
    metrics = {"queries": 10, "ndcg@10": 0.8, "recall@5": 0.9}
    for strategy, split in (("hybrid", "dev"), ("semantic", "dev"), ("hybrid", "holdout")):
        EvalRun.objects.create(
            dataset="locomo", split=split, strategy=strategy, metrics=metrics, embedding_model="m", seconds=1.5
        )

    refusals = [api.get("/evaluation/runs"), api_for("alice").get("/evaluation/runs")]
    every = api_admin.get("/evaluation/runs").json()
    hybrid_dev = api_admin.get("/evaluation/runs", strategy="hybrid", split="dev").json()

    assert [r.status_code for r in refusals] == [403, 403] and error(refusals[1])["code"] == "admin_required"
    assert every["count"] == 3 and [(r["strategy"], r["split"]) for r in every["items"]][0] == ("hybrid", "holdout")
    assert hybrid_dev["count"] == 1 and hybrid_dev["items"][0]["metrics"] == metrics
    assert api_admin.get("/evaluation/runs", strategy="nope").status_code == 422
