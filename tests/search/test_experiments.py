"""Online experiments: sticky assignment, team-draft interleaving and its credit, the bootstrap, and
searches through the API taken by an experiment and recorded with their arm."""

import io

import pytest

from memories.models import AuditEvent
from search.experiment_results import Comparison, bootstrap_difference, bootstrap_interval, experiment_results
from search.experiments import assigned_arm, interleaved_outcome, team_draft
from search.models import Experiment, SearchLog
from search.services import search_memories
from tests.support.memories import alices_five_and_bobs_one

ARM_SEMANTIC = {"strategy": "semantic"}
ARM_HYBRID = {"strategy": "hybrid", "params": {"fusion": "rrf", "rrf_k": 20}}


def experiment(**fields) -> Experiment:
    """An experiment as assignment reads it (not saved: assignment needs no database)."""
    return Experiment(**{"id": 7, "mode": "ab", "traffic_share": 0.5, "uids": [], **fields})


# Sticky assignment


def test_a_user_stays_in_one_arm_and_the_share_of_users_taken_in_is_the_traffic_share():
    running = experiment(traffic_share=0.3)
    uids = [f"user-{n}" for n in range(4000)]

    arms = {uid: assigned_arm(running, uid) for uid in uids}

    assert all(assigned_arm(running, uid) == arm for uid, arm in arms.items())  # asked again: the same
    taken = [arm for arm in arms.values() if arm]
    assert 0.27 < len(taken) / len(uids) < 0.33
    assert 0.45 < taken.count("a") / len(taken) < 0.55 and set(taken) == {"a", "b"}
    # another experiment draws its users afresh
    other = {uid: assigned_arm(experiment(id=8, traffic_share=0.3), uid) for uid in uids}
    assert other != arms


def test_only_users_of_the_allow_list_are_taken_in_and_interleaving_takes_them_all_to_both_arms():
    listed = experiment(traffic_share=1.0, uids=["alice", "ben"])

    assert assigned_arm(listed, "carmen") is None
    assert assigned_arm(listed, "alice") in ("a", "b") and assigned_arm(listed, "ben") in ("a", "b")
    assert assigned_arm(experiment(traffic_share=1.0, mode="interleave"), "carmen") == "interleaved"


# Team-draft interleaving, on a case worked by hand


def test_team_draft_interleaving_credits_each_result_to_the_arm_that_picked_it():
    """A = [1, 2, 3, 4], B = [2, 5, 1, 6], A first on every tie. Round 1: A picks 1, B its best
    not shown, 2. Round 2: A's next is 2 (shown), so 3; B picks 5. Round 3: A picks 4; B's 1 is
    shown, so 6."""
    merged = team_draft([1, 2, 3, 4], [2, 5, 1, 6], k=6, coin=lambda: True)

    assert merged == [(1, "a"), (2, "b"), (3, "a"), (5, "b"), (4, "a"), (6, "b")]
    # B first on every tie: B picks 2, A 1; B 5, A 3; B 6, A 4
    assert team_draft([1, 2, 3, 4], [2, 5, 1, 6], k=6, coin=lambda: False) == [
        (2, "b"),
        (1, "a"),
        (5, "b"),
        (3, "a"),
        (6, "b"),
        (4, "a"),
    ]
    # k cuts the list; an arm with nothing new left lets the other go on
    assert team_draft([1, 2], [1, 2, 3], k=3, coin=lambda: True) == [(1, "a"), (2, "b"), (3, "b")]
    assert team_draft([1, 2, 3, 4], [2, 5, 1, 6], k=3, coin=lambda: True) == merged[:3]


def test_the_arm_credited_with_more_relevant_or_used_results_wins_the_search():
    merged = [(1, "a"), (2, "b"), (3, "a"), (5, "b"), (4, "a"), (6, "b")]

    assert interleaved_outcome(merged, {2, 3, 5}) == 1  # B: 2 and 5, A: 3
    assert interleaved_outcome(merged, {1, 4}) == -1
    assert interleaved_outcome(merged, {1, 6}) == 0
    assert interleaved_outcome(merged, set()) == 0


# The bootstrap, on a fixed seed


def test_the_bootstrap_interval_is_the_same_for_the_same_seed_and_holds_the_mean():
    values = [0.0] * 50 + [1.0] * 50  # mean 0.5, standard error 0.05

    interval = bootstrap_interval(values, seed=3)

    assert interval == bootstrap_interval(values, seed=3)
    assert interval != bootstrap_interval(values, seed=4)
    low, high = interval
    assert low < 0.5 < high
    assert abs((high - low) - 2 * 1.96 * 0.05) < 0.03  # about the normal interval's width
    assert bootstrap_interval([0.4] * 10, seed=3) == (pytest.approx(0.4), pytest.approx(0.4))
    assert bootstrap_interval([1.0], seed=3) is None  # one value: no interval


def test_a_difference_whose_interval_holds_zero_is_not_significant_yet():
    same = bootstrap_difference([0.0, 1.0] * 20, [1.0, 0.0] * 20, seed=1)
    apart = bootstrap_difference([0.1, 0.2, 0.3] * 10, [0.7, 0.8, 0.9] * 10, seed=1)

    assert same[0] < 0 < same[1]
    assert "not significant yet" in Comparison("nDCG@10", 0.0, same).sentence
    assert apart[0] > 0.5 and "arm B is better" in Comparison("nDCG@10", 0.6, apart).sentence
    assert "too few" in Comparison("nDCG@10", None, bootstrap_difference([1.0], [0.0, 1.0], seed=1)).sentence


# Through the API, against the real model and PostgreSQL


@pytest.fixture
def api(api_admin):
    """Experiments are defined and run with a key of the admin scope (its searches take part too)."""
    return api_admin


@pytest.fixture(scope="module")
def memories(shared_rows):
    with shared_rows():
        yield alices_five_and_bobs_one()


def define(api, **fields) -> dict:
    body = {"name": "semantic against hybrid", "traffic_share": 1.0, "arm_a": ARM_SEMANTIC, "arm_b": ARM_HYBRID}
    response = api.post("/search/experiments", {**body, **fields})
    assert response.status_code == 201, response.content
    return response.json()


def start(api, experiment_id: int) -> dict:
    response = api.post(f"/search/experiments/{experiment_id}/start")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
class TestThroughTheApi:
    def test_a_search_that_names_no_strategy_runs_its_users_arm_and_is_recorded_with_it(self, api, memories):
        started = start(api, define(api)["id"])
        arm = assigned_arm(Experiment.objects.get(id=started["id"]), "alice")

        body = api.post("/search", {"uid": "alice", "query": "the cracked tooth crown"}).json()

        assert (body["experiment_id"], body["arm"]) == (started["id"], arm)
        expected = {"a": "semantic", "b": "hybrid"}[arm]
        assert body["strategy"] == expected and body["results"][0]["memory"]["id"] == memories["dentist"].id
        log = SearchLog.objects.get(id=body["search_id"])
        assert (log.experiment_id, log.arm, log.strategy) == (started["id"], arm, expected)
        if arm == "b":  # the arm's parameters
            assert log.params["fusion"] == "rrf" and log.params["strategy_params"]["rrf_k"] == 20
        # the same user again: the same arm
        again = api.post("/search", {"uid": "alice", "query": "groceries"}).json()
        assert again["arm"] == arm

    def test_a_search_that_names_a_strategy_or_runs_while_paused_stays_out(self, api, memories):
        experiment_id = start(api, define(api)["id"])["id"]

        named = api.post("/search", {"uid": "alice", "query": "crown", "strategy": "time_weighted"}).json()
        assert named["experiment_id"] is None and named["strategy"] == "time_weighted"
        assert api.post(f"/search/experiments/{experiment_id}/pause").json()["state"] == "paused"
        paused = api.post("/search", {"uid": "alice", "query": "crown"}).json()
        assert paused["experiment_id"] is None and paused["strategy"] == "hybrid"
        assert SearchLog.objects.filter(experiment__isnull=False).count() == 0
        resumed = start(api, experiment_id)
        assert resumed["state"] == "running" and resumed["started_at"] is not None
        assert api.post("/search", {"uid": "alice", "query": "crown"}).json()["experiment_id"] == experiment_id
        # every user, with no allow-list; with one, only its users
        assert api.post("/search", {"uid": "bob", "query": "crown"}).json()["experiment_id"] == experiment_id
        api.post(f"/search/experiments/{experiment_id}/end")
        only_alice = start(api, define(api, uids=["alice"])["id"])
        assert api.post("/search", {"uid": "bob", "query": "crown"}).json()["experiment_id"] is None
        assert api.post("/search", {"uid": "alice", "query": "crown"}).json()["experiment_id"] == only_alice["id"]

    def test_the_evaluations_own_searches_never_take_part(self, api, memories):
        start(api, define(api)["id"])

        unlogged = search_memories(uid="alice", queries=["crown"], strategy=None, log=False)

        assert unlogged.experiment is None and unlogged.strategy == "hybrid" and unlogged.hits

    def test_interleaved_results_name_their_arm_and_feedback_credits_it(self, api, memories):
        experiment_id = start(
            api,
            define(
                api,
                mode="interleave",
                arm_a={"strategy": "time_weighted", "params": {"half_life_days": 0.01}},  # the newest first
                arm_b=ARM_SEMANTIC,
            )["id"],
        )["id"]

        body = api.post("/search", {"uid": "alice", "query": "the cracked tooth crown", "k": 4}).json()

        assert body["arm"] == "interleaved" and body["strategy"] == "interleaved"
        arms = [hit["arm"] for hit in body["results"]]
        assert len(arms) == 4 and arms.count("a") == 2 and arms.count("b") == 2  # team draft: turns
        ids = [hit["memory"]["id"] for hit in body["results"]]
        assert len(set(ids)) == 4
        by_arm = {arm: [i for i, a in zip(ids, arms, strict=True) if a == arm] for arm in ("a", "b")}
        search_id = body["search_id"]
        # B: one judged relevant and one used; A: one judged relevant, one judged not relevant
        for memory_id, signal in [
            (by_arm["b"][0], {"relevant": True}),
            (by_arm["b"][1], {"used": True}),
            (by_arm["a"][0], {"relevant": True}),
            (by_arm["a"][1], {"relevant": False}),
        ]:
            assert (
                api.post("/search/feedback", {"search_id": search_id, "memory_id": memory_id, **signal}).status_code
                == 201
            )

        results = api.get(f"/search/experiments/{experiment_id}/results").json()

        assert (results["wins_a"], results["ties"], results["wins_b"]) == (0, 0, 1)
        assert {arm["arm"]: arm["credits"] for arm in results["arms"]} == {"a": 1, "b": 2}
        assert all(arm["latency_p50_ms"] > 0 for arm in results["arms"])
        assert "too few" in results["comparisons"][0]["sentence"]

    def test_ab_results_per_arm_from_judgments(self, api, memories):
        experiment_id = start(api, define(api)["id"])["id"]
        experiment = Experiment.objects.get(id=experiment_id)
        searches = [api.post("/search", {"uid": "alice", "query": q}).json() for q in ("crown", "piano", "tomatoes")]
        for body in searches:
            first = body["results"][0]["memory"]["id"]
            api.post("/search/feedback", {"search_id": body["search_id"], "memory_id": first, "relevant": True})

        results = experiment_results(experiment, seed=0)

        arm = next(a for a in results.arms if a.name == searches[0]["arm"])
        other = next(a for a in results.arms if a.name != searches[0]["arm"])
        assert (arm.searches, arm.judged, arm.judged_share) == (3, 3, 1.0)
        assert arm.precision.mean == 1.0 and arm.ndcg.mean == 1.0 and arm.precision.interval == (1.0, 1.0)
        assert other.searches == 0 and other.precision.mean is None
        assert arm.latency_p50 > 0 and arm.latency_p95 >= arm.latency_p50
        assert all("too few" in c.sentence for c in results.comparisons)  # one arm has no search

    def test_feedback_takes_a_used_signal_and_keeps_its_shape(self, api, memories):
        body = api.post("/search", {"uid": "alice", "query": "crown", "strategy": "semantic"}).json()
        first = body["results"][0]["memory"]["id"]

        judged = api.post("/search/feedback", {"search_id": body["search_id"], "memory_id": first, "relevant": True})
        used = api.post("/search/feedback", {"search_id": body["search_id"], "memory_id": first, "used": True})
        neither = api.post("/search/feedback", {"search_id": body["search_id"], "memory_id": first})
        elsewhere = api.post(
            "/search/feedback", {"search_id": body["search_id"], "memory_id": memories["bob"].id, "used": True}
        )

        assert judged.status_code == 201 and judged.json() == {
            "search_id": body["search_id"],
            "memory_id": first,
            "relevant": True,
            "note": "",
            "used": False,
        }
        assert used.status_code == 201 and used.json()["used"] is True and used.json()["relevant"] is True
        assert neither.status_code == 422 and "used" in neither.json()["error"]["message"]
        assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "not_a_result"


@pytest.mark.django_db
class TestDefiningExperiments:
    def test_an_admin_key_defines_starts_pauses_and_ends_a_scoped_key_is_refused(self, api, api_for):
        scoped = api_for("alice")
        body = {"name": "A/A", "traffic_share": 0.5, "arm_a": ARM_SEMANTIC, "arm_b": ARM_SEMANTIC}

        refused = scoped.post("/search/experiments", body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_required"
        assert not Experiment.objects.exists()
        made = define(api, **body)
        assert (
            made["state"] == "draft"
            and made["name"] == "A/A"
            and made["arm_a"]
            == {
                "strategy": "semantic",
                "params": {},
                "profile": "",
                "index_version": "",
            }
        )
        for action in ("start", "pause", "end"):
            assert scoped.post(f"/search/experiments/{made['id']}/{action}").status_code == 403
        assert scoped.get(f"/search/experiments/{made['id']}/results").status_code == 403
        assert scoped.get("/search/experiments").status_code == 403
        assert Experiment.objects.get().state == "draft"

        assert [
            api.post(f"/search/experiments/{made['id']}/{a}").json()["state"] for a in ("start", "pause", "end")
        ] == [
            "running",
            "paused",
            "ended",
        ]
        ended = api.post(f"/search/experiments/{made['id']}/start")
        assert ended.status_code == 409 and ended.json()["error"]["code"] == "experiment_state"
        assert [e.action for e in AuditEvent.objects.filter(target_type="experiment").order_by("id")] == [
            "experiment.create",
            "experiment.start",
            "experiment.pause",
            "experiment.end",
        ]
        listed = api.get("/search/experiments").json()["items"]
        assert [e["id"] for e in listed] == [made["id"]]

    def test_one_experiment_runs_at_a_time(self, api):
        first = start(api, define(api)["id"])
        second = define(api, name="another")

        refused = api.post(f"/search/experiments/{second['id']}/start")

        assert refused.status_code == 409 and refused.json()["error"]["code"] == "experiment_running"
        assert str(first["id"]) in refused.json()["error"]["message"]
        api.post(f"/search/experiments/{first['id']}/pause")
        assert start(api, second["id"])["state"] == "running"

    @pytest.mark.parametrize(
        ("arm", "message"),
        [
            ({"strategy": "hybrid", "index_version": "v2"}, "there is no index version 'v2'"),
            ({"strategy": "hybrid", "params": {"alpha": 1}}, "strategy hybrid has no parameter 'alpha'"),
            ({"strategy": "hybrid", "params": {"rrf_k": 0}}, "parameter rrf_k must be between 1 and 1000"),
            ({"strategy": "hybrid", "profile": "nothing-like-it"}, "no parameter profile named"),
            ({"strategy": "time_weighted", "params": {"half_life_days": -1}}, "half_life_days"),
            ({"strategy": "hybrid", "params": {"fusion": "max"}}, "fusion must be one of"),
        ],
    )
    def test_an_arm_that_cannot_run_is_refused(self, api, arm, message):
        response = api.post(
            "/search/experiments", {"name": "x", "traffic_share": 0.5, "arm_a": ARM_SEMANTIC, "arm_b": arm}
        )

        assert response.status_code == 422 and message in response.json()["error"]["message"]
        assert "arm B" in response.json()["error"]["message"] and not Experiment.objects.exists()

    def test_a_traffic_share_out_of_range_or_an_unknown_id_is_refused(self, api):
        body = {"name": "x", "arm_a": ARM_SEMANTIC, "arm_b": ARM_SEMANTIC}

        assert api.post("/search/experiments", {**body, "traffic_share": 0}).status_code == 422
        assert api.post("/search/experiments", {**body, "traffic_share": 1.5}).status_code == 422
        assert api.post("/search/experiments/999/start").status_code == 404
        assert api.get("/search/experiments/999/results").status_code == 404


# An arm on another index version (memories.index_versions), met by the OpenAI test server


@pytest.mark.django_db
def test_an_arm_searches_its_own_index_version_and_a_dropped_one_leaves_searches_alone(api, fake_openai):
    from django.core.management import call_command

    from memories.index_versions import index_version_drop
    from memories.models import VectorIndex
    from omi_memory.actors import Actor
    from tests.support.transcripts import BUDGET, DENTIST

    for transcript in (DENTIST, BUDGET):
        assert api.post("/memories", {"uid": "alice", "transcript": transcript}).status_code == 201
    call_command("index_build", "--embedder", "openai", "--dimensions", "32", stdout=io.StringIO())
    live, built = VectorIndex.objects.order_by("id")
    experiment_id = start(
        api,
        define(api, mode="interleave", arm_a=ARM_SEMANTIC, arm_b={"strategy": "semantic", "index_version": built.name})[
            "id"
        ],
    )["id"]

    body = api.post("/search", {"uid": "alice", "query": "the cracked tooth crown", "k": 2}).json()

    assert body["experiment_id"] == experiment_id and len(body["results"]) == 2
    arms = SearchLog.objects.get(id=body["search_id"]).params["arms"]
    assert (arms["a"]["index_version"], arms["b"]["index_version"]) == (live.name, built.name)
    # the version an arm searches is dropped: searches go on, outside the experiment
    index_version_drop(name=built.name, actor=Actor.command())
    after = api.post("/search", {"uid": "alice", "query": "the cracked tooth crown"})
    assert after.status_code == 200 and after.json()["experiment_id"] is None and after.json()["results"]
    refused = api.post(f"/search/experiments/{experiment_id}/pause")
    assert refused.status_code == 200  # it can still be paused, then not started again
    again = api.post(f"/search/experiments/{experiment_id}/start")
    assert again.status_code == 409 and again.json()["error"]["code"] == "experiment_arm"
