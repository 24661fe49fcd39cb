"""Parameter profiles through the API (admins): list and read them, activate one so that its
strategy's searches use it, deactivate it; audited, and refused to other keys."""

import pytest

from memories.models import AuditEvent
from search.models import ParameterProfile, SearchLog
from search.services import profile_create
from search.strategies import strategy_defaults, weight_param

pytestmark = pytest.mark.django_db


@pytest.fixture
def profiles() -> tuple[ParameterProfile, ParameterProfile]:
    keyword_heavy = profile_create(
        name="keywords", strategy="hybrid", params={weight_param("lexical"): 0.9}, source={"kind": "tune", "folds": 5}
    )
    recent = profile_create(name="recent", strategy="time_weighted", params={"pool": 80})
    return keyword_heavy, recent


def error(response) -> dict:
    return response.json()["error"]


def test_an_admin_lists_reads_activates_and_deactivates_a_profile_and_searches_follow(api_admin, profiles, remember):
    keyword_heavy, recent = profiles
    remember("alice", "Dr. Patel: the crown is cracked, book a replacement next week.")

    listed = api_admin.get("/search/profiles").json()
    hybrid_only = api_admin.get("/search/profiles", strategy="hybrid").json()
    assert [p["name"] for p in listed["items"]] == ["recent", "keywords"] and listed["count"] == 2
    assert [p["name"] for p in hybrid_only["items"]] == ["keywords"]
    read = api_admin.get(f"/search/profiles/{keyword_heavy.id}").json()
    assert read["params"] == {**strategy_defaults("hybrid"), weight_param("lexical"): 0.9}
    assert (read["active"], read["tuned"]) == (False, {"kind": "tune", "folds": 5})
    assert api_admin.get(f"/search/profiles/{recent.id}").json()["tuned"] is None

    activated = api_admin.post(f"/search/profiles/{keyword_heavy.id}/activate")
    assert activated.status_code == 200 and activated.json()["active"] and activated.json()["activated_at"]
    api_admin.post("/search", {"uid": "alice", "query": "cracked crown"})
    assert SearchLog.objects.order_by("-id").first().params["profile"] == "keywords"
    event = AuditEvent.objects.get(action=AuditEvent.Action.PROFILE_ACTIVATE)
    assert event.actor_type == "api_key" and event.target_ids == [keyword_heavy.id]

    deactivated = api_admin.post(f"/search/profiles/{keyword_heavy.id}/deactivate")
    assert deactivated.status_code == 200 and not deactivated.json()["active"]
    api_admin.post("/search", {"uid": "alice", "query": "cracked crown again"})
    assert SearchLog.objects.order_by("-id").first().params["profile"] is None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PROFILE_DEACTIVATE, actor_type="api_key").count() == 1


def test_activating_a_profile_deactivates_its_strategys_other_and_only_the_active_one_can_be_deactivated(
    api_admin, profiles
):
    keyword_heavy, recent = profiles
    other = profile_create(name="keywords-2", strategy="hybrid", params={weight_param("lexical"): 0.8})
    api_admin.post(f"/search/profiles/{keyword_heavy.id}/activate")
    api_admin.post(f"/search/profiles/{recent.id}/activate")  # another strategy's: both stay active

    assert api_admin.post(f"/search/profiles/{other.id}/activate").status_code == 200
    refused = api_admin.post(f"/search/profiles/{keyword_heavy.id}/deactivate")

    assert refused.status_code == 409 and error(refused)["code"] == "not_active"
    active = {p["name"] for p in api_admin.get("/search/profiles").json()["items"] if p["active"]}
    assert active == {"keywords-2", "recent"}  # the refusal deactivated nothing
    missing = api_admin.post("/search/profiles/999999/activate")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"


def test_a_key_without_the_admin_scope_may_neither_see_nor_change_profiles(api, api_for, profiles):
    keyword_heavy, _ = profiles
    for client in (api, api_for("alice")):
        answers = [
            client.get("/search/profiles"),
            client.get(f"/search/profiles/{keyword_heavy.id}"),
            client.post(f"/search/profiles/{keyword_heavy.id}/activate"),
            client.post(f"/search/profiles/{keyword_heavy.id}/deactivate"),
        ]
        assert [a.status_code for a in answers] == [403] * 4
        assert {error(a)["code"] for a in answers} == {"admin_required"}
    assert not ParameterProfile.objects.filter(active=True).exists()
