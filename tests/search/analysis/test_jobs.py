"""Cluster runs and duplicate scans are never lost: one made while the broker is down is answered
and run once it is back; one whose message was lost, or whose worker stopped, is sent again by the
sweeper; one whose worker keeps dying fails with the reason; a worker alive on a job keeps it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from omi_memory.breaker import BROKER
from search import tasks
from search.analysis import jobs
from search.analysis.clusters import cluster_run_create, cluster_run_execute
from search.analysis.duplicates import duplicate_scan_enqueue
from search.models import ClusterRun, DuplicateScan
from tests.support.actors import COMMAND
from tests.support.memories import indexed_memory
from tests.support.transactions import committed
from tests.support.transcripts import HEALTH, MONEY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_topics")]


@pytest.fixture(scope="module")
def two_topics(shared_rows):
    with shared_rows():
        yield [indexed_memory("u-jobs", text).id for text in HEALTH + MONEY]


@pytest.fixture
def broker_down(monkeypatch):
    """The broker refuses every task of the search app until `back()`."""
    sent = []

    def refuse(*args, **kwargs):
        sent.append(kwargs.get("args"))
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for task in (tasks.cluster_memories, tasks.run_duplicate_scan):
        monkeypatch.setattr(task, "apply_async", refuse)

    def back():
        monkeypatch.undo()
        BROKER.reset()  # as when BROKER_RETRY_AFTER_SECONDS have passed

    refuse.back, refuse.sent = back, sent
    return refuse


def aged(model, job_id: int, seconds: float) -> None:
    """As if the job was last sent, or last beat, `seconds` ago."""
    model.objects.filter(id=job_id).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_a_job_made_while_the_broker_is_down_is_answered_and_run_after_the_next_sweep(api, broker_down):
    response = api.post("/clusters/runs", {"uid": "u-jobs", "k": 2})
    scan = api.post("/duplicates/scans", {"uid": "u-jobs"})

    assert (response.status_code, scan.status_code) == (202, 202), (response.json(), scan.json())
    run_id, scan_id = response.json()["id"], scan.json()["id"]
    assert ClusterRun.objects.get(id=run_id).status == DuplicateScan.objects.get(id=scan_id).status == "queued"
    assert len(broker_down.sent) == 1  # then the breaker spared the broker the second try

    assert jobs.jobs_sweep() == {"sent": 0, "failed": 0}  # still down: both wait for the next sweep
    broker_down.back()
    assert jobs.jobs_sweep() == {"sent": 2, "failed": 0}  # run here: tasks are in-process without Redis

    run, scan = ClusterRun.objects.get(id=run_id), DuplicateScan.objects.get(id=scan_id)
    assert (run.status, run.k, run.attempts) == ("done", 2, 1), run.error
    assert (scan.status, scan.attempts, scan.counts["memories"]) == ("done", 1, 8), scan.error
    assert jobs.jobs_sweep() == {"sent": 0, "failed": 0}


def test_a_job_whose_message_was_lost_is_sent_again_once_its_queue_lease_has_passed(settings, monkeypatch):
    monkeypatch.setattr(tasks.cluster_memories, "apply_async", lambda *args, **kwargs: None)  # taken, then flushed
    with committed():
        run = cluster_run_create(uid="u-jobs", k=2, actor=COMMAND)
    monkeypatch.undo()
    aged(ClusterRun, run.id, settings.PIPELINE_QUEUE_LEASE_SECONDS - 30)

    assert jobs.jobs_sweep()["sent"] == 0  # it may still be waiting behind other work
    assert ClusterRun.objects.get(id=run.id).status == "queued"
    aged(ClusterRun, run.id, settings.PIPELINE_QUEUE_LEASE_SECONDS + 1)
    assert jobs.jobs_sweep()["sent"] == 1
    assert ClusterRun.objects.get(id=run.id).status == "done"


def test_a_running_job_whose_worker_stopped_is_run_again_and_one_whose_worker_beats_is_left_alone(settings):
    with committed():
        alive = duplicate_scan_enqueue(uid="u-jobs", actor=COMMAND)
        dead = duplicate_scan_enqueue(uid="u-jobs", actor=COMMAND)
    # Both taken by a worker, then: one beat a moment ago; the other's worker was killed, its last beat a lease ago.
    DuplicateScan.objects.filter(id__in=[alive.id, dead.id]).update(status="running", attempts=1, counts={})
    aged(DuplicateScan, alive.id, settings.PIPELINE_LEASE_SECONDS / 2)
    aged(DuplicateScan, dead.id, settings.PIPELINE_LEASE_SECONDS + 1)

    assert tasks.run_duplicate_scan(alive.id) == "running"  # a second delivery takes nothing from a live worker
    assert jobs.jobs_sweep() == {"sent": 1, "failed": 0}

    alive, dead = DuplicateScan.objects.get(id=alive.id), DuplicateScan.objects.get(id=dead.id)
    assert (alive.status, alive.attempts, alive.counts) == ("running", 1, {})
    assert (dead.status, dead.attempts, dead.counts["memories"]) == ("done", 2, 8)


def test_a_job_whose_worker_keeps_dying_fails_with_the_reason(settings):
    with committed():
        run = cluster_run_create(uid="u-jobs", k=2, actor=COMMAND)
    attempts = settings.PIPELINE_MAX_RETRIES + 1
    ClusterRun.objects.filter(id=run.id).update(status="running", attempts=attempts, progress="k=2: labelling")
    aged(ClusterRun, run.id, settings.PIPELINE_LEASE_SECONDS + 1)

    assert jobs.jobs_sweep() == {"sent": 0, "failed": 1}

    run.refresh_from_db()
    assert (run.status, run.progress) == ("failed", "")
    assert run.error == f"its worker stopped {attempts} times before it finished" and run.finished_at


def test_a_finished_job_is_never_taken_again():
    with committed():
        run = cluster_run_create(uid="u-jobs", k=2, actor=COMMAND)
    finished_at = ClusterRun.objects.get(id=run.id).finished_at
    aged(ClusterRun, run.id, 10**6)

    assert cluster_run_execute(run_id=run.id) == "done"
    assert jobs.jobs_sweep()["sent"] == 0
    assert ClusterRun.objects.get(id=run.id).finished_at == finished_at
