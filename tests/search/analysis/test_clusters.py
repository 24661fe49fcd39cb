"""Clusters of one user's memories: KMeans, k by silhouette, labels, the 2-D map."""

import pytest

from omi_memory.errors import Conflict, ValidationFailed
from search.analysis.clusters import cluster_run_create
from search.models import ClusterRun
from tests.support.actors import COMMAND
from tests.support.memories import indexed_memory
from tests.support.transactions import committed
from tests.support.transcripts import HEALTH, MONEY

# Every test sees the same two topics of one user, made once for the module: a test's own changes
# (runs, other users' memories, memories deleted) are rolled back after it.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_topics")]


@pytest.fixture(scope="module")
def two_topics(shared_rows):
    with shared_rows():
        health = [indexed_memory("u-topics", text).id for text in HEALTH]
        money = [indexed_memory("u-topics", text).id for text in MONEY]
        yield health, money


def _run(**kwargs) -> ClusterRun:
    with committed():  # the task runs (eagerly, without Redis) once the run is committed
        run = cluster_run_create(**kwargs, actor=COMMAND)
    run.refresh_from_db()
    return run


def test_auto_k_finds_the_two_topics_and_labels_them(two_topics):
    health, money = two_topics

    run = _run(uid="u-topics", k_min=2, k_max=5)

    assert run.status == ClusterRun.Status.DONE, run.error
    assert run.k == 2
    assert set(run.silhouettes) == {"2"}  # at most 8 / 3 clusters are tried
    groups = sorted((sorted(c["memory_ids"]) for c in run.clusters), key=lambda ids: ids[0])
    assert groups == sorted([sorted(health), sorted(money)], key=lambda ids: ids[0])
    labels = {c["memory_ids"][0] in health: " ".join(c["terms"]) for c in run.clusters}
    assert any(word in labels[True] for word in ("dentist", "tooth", "teeth", "crown", "molar", "gums", "cavity"))
    assert any(word in labels[False] for word in ("budget", "money", "savings", "dollars", "bill"))
    assert run.memories == 8 and run.embedding_model and run.finished_at is not None


def test_auto_k_on_a_small_user_tries_at_most_a_third_as_many_clusters_and_leaves_no_memory_alone(two_topics, remember):
    from tests.support.transcripts import GARDEN, RECITAL

    for text in HEALTH + MONEY[:3] + [GARDEN, RECITAL]:  # 9 memories, two of them on topics of their own
        remember("u-small", text)

    run = _run(uid="u-small", k_min=2, k_max=10)

    assert run.status == ClusterRun.Status.DONE, run.error
    assert set(run.silhouettes) == {"2", "3"}
    assert min(c["size"] for c in run.clusters) >= 2


def test_every_memory_gets_one_point_on_the_map(two_topics):
    health, money = two_topics

    run = _run(uid="u-topics", k=2)

    assert run.status == ClusterRun.Status.DONE, run.error
    assert sorted(p["memory_id"] for p in run.points) == sorted(health + money)
    assert {p["cluster"] for p in run.points} == {0, 1}
    assert len({(p["x"], p["y"]) for p in run.points}) == 8


def test_a_run_never_includes_another_users_memories(two_topics, remember):
    health, money = two_topics
    others = [remember("u-other", text).id for text in HEALTH[:2] + MONEY[:2]]

    run = _run(uid="u-other", k=2)

    assert run.status == ClusterRun.Status.DONE, run.error
    clustered = {m for c in run.clusters for m in c["memory_ids"]} | {p["memory_id"] for p in run.points}
    assert clustered == set(others)
    assert not clustered & set(health + money)


def test_fewer_than_three_memories_are_refused_with_a_clear_reason(remember):
    remember("u-few", HEALTH[0])
    remember("u-few", MONEY[0])

    with pytest.raises(Conflict, match="2 indexed memories; clustering needs at least 3"):
        cluster_run_create(uid="u-few", actor=COMMAND)
    assert not ClusterRun.objects.exists()


@pytest.mark.parametrize(
    "kwargs, refusal, message",
    [
        ({"uid": "nobody-here"}, Conflict, "has no indexed memories"),
        ({"uid": "u-topics", "k": 1}, ValidationFailed, "k must be at least 2"),
        ({"uid": "u-topics", "k": 8}, Conflict, "smaller than the number of indexed memories"),
        ({"uid": "u-topics", "k_min": 5, "k_max": 3}, ValidationFailed, "smallest k (5) is larger than the largest"),
    ],
)
def test_bad_requests_are_refused_before_anything_runs(two_topics, kwargs, refusal, message):
    with pytest.raises(refusal) as caught:
        cluster_run_create(**kwargs, actor=COMMAND)

    assert message in caught.value.message
    assert not ClusterRun.objects.exists()


def test_a_run_whose_memories_went_away_fails_with_the_reason(two_topics):
    from memories.models import Memory
    from search.analysis.clusters import cluster_run_execute

    run = ClusterRun.objects.create(uid="u-topics", k_requested=2)  # accepted, then memories deleted
    Memory.objects.filter(uid="u-topics").exclude(id=two_topics[0][0]).update(status=Memory.Status.DELETED)

    assert cluster_run_execute(run_id=run.id) == ClusterRun.Status.FAILED
    run.refresh_from_db()
    assert run.status == ClusterRun.Status.FAILED
    assert "has 1 indexed memories" in run.error and "at least 3" in run.error
