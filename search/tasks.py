"""Celery tasks of the search app: thin, ids only, over the analysis services.

Names are fixed (`name=`), so messages queued before a deploy that moves code still find their task.
"""

import logging

from celery import shared_task

from .analysis import clusters, duplicates, jobs

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, name="search.tasks.cluster_memories")
def cluster_memories(run_id: int) -> str:
    """Run one clustering (`clusters.cluster_run_execute`); its errors are recorded on the run, so
    there is nothing to retry. A run whose worker stopped is sent again by `sweep_jobs`."""
    return clusters.cluster_run_execute(run_id=run_id)


@shared_task(acks_late=True, name="search.tasks.check_duplicates")
def check_duplicates(memory_ids: list[int]) -> dict:
    """Check newly indexed memories against their users' others. The memories are indexed
    whatever happens here: a failure fails this task only (logged by Celery), and the next scan
    finds the pairs."""
    return duplicates.duplicate_check_memories(memory_ids=memory_ids)


@shared_task(acks_late=True, name="search.tasks.run_duplicate_scan")
def run_duplicate_scan(scan_id: int) -> str:
    """Run one recorded duplicate scan (`duplicates.duplicate_scan_execute`): the dashboard's scan
    button and the API's; its errors are recorded on the scan. A scan whose worker stopped is sent
    again by `sweep_jobs`."""
    return duplicates.duplicate_scan_execute(scan_id=scan_id)


@shared_task(name="search.tasks.sweep_jobs")
def sweep_jobs() -> dict[str, int]:
    """Send again the cluster runs and duplicate scans whose message or worker was lost (Celery
    beat, every PIPELINE_SWEEP_SECONDS; `jobs.jobs_sweep`)."""
    return jobs.jobs_sweep()


@shared_task(acks_late=True, name="search.tasks.scan_duplicates")
def scan_duplicates(uid: str | None = None, threshold: float | None = None) -> dict:
    """Scan one user (or every user) for duplicate pairs, unrecorded: what scans queued before
    scans were recorded (`run_duplicate_scan`) still run as."""
    return duplicates.duplicate_scan(uid=uid, threshold=threshold)
