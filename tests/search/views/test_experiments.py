"""The experiments pages: admins define, start, pause and end experiments; analysts read the results;
dashboard searches with the strategy on auto take part."""

import re

import pytest

from memories.models import AuditEvent
from search.experiments import assigned_arm
from search.models import Experiment, RelevanceFeedback, SearchLog
from tests.support.memories import alices_five_and_bobs_one

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memories")]

FORM = {
    "name": "semantic against hybrid",
    "mode": "ab",
    "traffic_share": "1",
    "uids": "",
    "a-strategy": "semantic",
    "a-fusion": "",
    "a-half_life_days": "",
    "a-params": "",
    "a-profile": "",
    "a-index_version": "",
    "b-strategy": "hybrid",
    "b-fusion": "rrf",
    "b-half_life_days": "",
    "b-params": '{"rrf_k": 20}',
    "b-profile": "",
    "b-index_version": "",
}


@pytest.fixture(scope="module")
def memories(shared_rows):
    with shared_rows():
        yield alices_five_and_bobs_one()


def test_an_admin_defines_an_experiment_in_draft_and_starts_it(signed_in):
    admin = signed_in("admin")

    assert 'id="experiment-form"' in admin.get("/experiments/").content.decode()
    response = admin.post("/experiments/new/", FORM)

    experiment = Experiment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/experiments/{experiment.id}/"
    assert experiment.state == "draft" and experiment.arm_b == {
        "strategy": "hybrid",
        "params": {"rrf_k": 20, "fusion": "rrf"},
        "profile": "",
        "index_version": "",
    }
    page = admin.get(response["Location"]).content.decode()
    assert "hybrid (fusion=rrf, rrf_k=20)" in page and ">Start</button>" in page
    assert admin.post(f"/experiments/{experiment.id}/state/", {"state": "running"}).status_code == 302
    experiment.refresh_from_db()
    assert experiment.state == "running"
    page = admin.get(f"/experiments/{experiment.id}/").content.decode()
    assert ">Pause</button>" in page and ">Start</button>" not in page
    actions = AuditEvent.objects.filter(target_type="experiment").values_list("action", "actor_name")
    assert list(actions.order_by("id")) == [("experiment.create", "admin"), ("experiment.start", "admin")]


def test_an_arm_the_service_cannot_run_is_shown_at_the_form(signed_in):
    response = signed_in("admin").post("/experiments/new/", {**FORM, "b-index_version": "v2"})

    assert response.status_code == 400
    assert "there is no index version" in response.content.decode()
    assert not Experiment.objects.exists()


def test_an_analyst_reads_results_but_defines_and_changes_nothing(signed_in):
    experiment = Experiment.objects.create(
        name="A/A", traffic_share=1.0, arm_a={"strategy": "semantic"}, arm_b={"strategy": "semantic"}
    )
    analyst = signed_in("analyst")

    listing = analyst.get("/experiments/").content.decode()
    assert "A/A" in listing and 'id="experiment-form"' not in listing
    page = analyst.get(f"/experiments/{experiment.id}/")
    assert page.status_code == 200 and "<button" not in page.content.decode().split('id="results"')[0].split("</h1>")[1]
    assert analyst.post("/experiments/new/", FORM).status_code == 403
    assert analyst.post(f"/experiments/{experiment.id}/state/", {"state": "running"}).status_code == 403
    assert Experiment.objects.get().state == "draft" and Experiment.objects.count() == 1
    assert analyst.get("/experiments/999/").status_code == 404


def test_dashboard_searches_on_auto_take_part_and_the_results_page_counts_them(signed_in, memories):
    experiment = Experiment.objects.create(
        name="semantic against hybrid",
        traffic_share=1.0,
        state="running",
        arm_a={"strategy": "semantic", "params": {}, "index_version": ""},
        arm_b={"strategy": "hybrid", "params": {}, "index_version": ""},
    )
    analyst = signed_in("analyst")
    arm = assigned_arm(experiment, "alice")

    auto = analyst.get("/search/", {"uid": "alice", "query": "the cracked tooth crown"})
    named = analyst.get("/search/", {"uid": "alice", "query": "the cracked tooth crown", "strategy": "semantic"})

    assert auto.status_code == named.status_code == 200
    assert f"arm {arm}" in auto.content.decode() and "experiment" not in named.content.decode().split('id="results"')[1]
    taken = SearchLog.objects.get(experiment=experiment)
    assert taken.arm == arm and SearchLog.objects.filter(experiment__isnull=True).count() == 1
    RelevanceFeedback.objects.create(search=taken, memory=memories["dentist"], relevant=True)

    page = analyst.get(f"/experiments/{experiment.id}/").content.decode()
    row = re.search(rf'<tr id="arm-{arm}">(.*?)</tr>', page, re.S)[1]
    assert re.findall(r'<td class="num">(\d+)', row)[:2] == ["1", "1"]  # one search, judged
    assert "too few judged searches" in page
