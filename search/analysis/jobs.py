"""Runs done by tasks (cluster runs, duplicate scans), never lost: the pipeline's leases
(memories/processing.py) for jobs.

A job is sent once the row that records it commits (`job_send`); when the broker cannot take it,
the row stays `queued` for the sweeper. One worker claims it (`job_claim`: queued, or running with
no heartbeat for PIPELINE_LEASE_SECONDS, so a second delivery of its message does nothing while a
worker is on it) and keeps it alive while it works (`job_heartbeat`). Every PIPELINE_SWEEP_SECONDS
the sweeper (`jobs_sweep`, Celery beat) sends again the jobs queued for PIPELINE_QUEUE_LEASE_SECONDS
(their message lost: Redis flushed, restarted, or down when the job was made) and the running ones
whose worker stopped beating (killed); one that lost its worker more than PIPELINE_MAX_RETRIES
times is failed, with the reason.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from omi_memory.breaker import send_task
from omi_memory.heartbeat import Heartbeat

from ..models import ClusterRun, DuplicateScan, Job

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 100  # jobs of each kind sent again per sweep
Status = Job.Status


def _task(model: type[Job]):
    from .. import tasks

    return {ClusterRun: tasks.cluster_memories, DuplicateScan: tasks.run_duplicate_scan}[model]


def _lease() -> timedelta:
    return timedelta(seconds=settings.PIPELINE_LEASE_SECONDS)


def _queue_lease() -> timedelta:
    return timedelta(seconds=settings.PIPELINE_QUEUE_LEASE_SECONDS)


def job_send(model: type[Job], job_id: int) -> bool:
    """Send the job's task; when the broker cannot take it, the job is left for the next sweep."""
    if send_task(_task(model), [job_id], what_now="the job is stored and the sweeper sends it once the broker is back"):
        return True
    model.objects.filter(id=job_id, status=Status.QUEUED).update(updated_at=timezone.now() - _queue_lease())
    return False


def job_claim(model: type[Job], job_id: int, **fields) -> bool:
    """Take the job for this worker (running, attempts + 1, with `fields`): only a queued one, or a
    running one whose worker stopped beating."""
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, updated_at__lt=now - _lease())
    return bool(
        model.objects.filter(claimable, id=job_id).update(
            status=Status.RUNNING, updated_at=now, attempts=F("attempts") + 1, error="", **fields
        )
    )


def job_heartbeat(model: type[Job], job_id: int) -> Heartbeat:
    """While the block runs, the running job's `updated_at` is renewed every quarter lease, so the
    sweeper knows its worker is alive however long it works."""

    def beat() -> bool:
        return bool(model.objects.filter(id=job_id, status=Status.RUNNING).update(updated_at=timezone.now()))

    return Heartbeat(f"job-{job_id}", settings.PIPELINE_LEASE_SECONDS / 4, beat)


def jobs_sweep(limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Send again the jobs whose message or worker was lost (see the module); fail those that lost
    their worker too often. Concurrent sweeps send each job once (each takes it by an UPDATE)."""
    now = timezone.now()
    done = {"sent": 0, "failed": 0}
    for model in (ClusterRun, DuplicateScan):
        extra = {"progress": ""} if model is ClusterRun else {}
        lost = model.objects.filter(
            Q(status=Status.QUEUED, updated_at__lt=now - _queue_lease())
            | Q(status=Status.RUNNING, updated_at__lt=now - _lease())
        )
        for job_id, status, attempts, updated_at in lost.values_list("id", "status", "attempts", "updated_at")[:limit]:
            taken = model.objects.filter(id=job_id, status=status, updated_at=updated_at)
            if status == Status.RUNNING and attempts > settings.PIPELINE_MAX_RETRIES:
                reason = f"its worker stopped {attempts} times before it finished"
                failed = taken.update(status=Status.FAILED, error=reason, finished_at=now, updated_at=now, **extra)
                done["failed"] += failed
                if failed:
                    logger.warning("%s %s failed: %s", model.__name__, job_id, reason)
            elif taken.update(status=Status.QUEUED, updated_at=now, **extra):
                why = "its worker stopped" if status == Status.RUNNING else "its message was lost"
                logger.info("%s %s: %s; sent again", model.__name__, job_id, why)
                done["sent"] += job_send(model, job_id)
    return done
