"""Celery tasks of the search app: thin, ids only, over the analysis services.

Names are fixed (`name=`), so messages queued before a deploy that moves code still find their task.
"""

import logging

from celery import shared_task

from .analysis import clusters, duplicates

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name="search.tasks.cluster_memories")
def cluster_memories(self, run_id: int) -> str:
    """Run one clustering (`clusters.cluster_run_execute`); its errors are recorded on the run, so
    there is nothing to retry. A redelivered task may take over a run left running."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return clusters.cluster_run_execute(run_id=run_id, reclaim=redelivered)


@shared_task(acks_late=True, name="search.tasks.check_duplicates")
def check_duplicates(memory_ids: list[int]) -> dict:
    """Check newly indexed memories against their users' others. The memories are indexed
    whatever happens here: a failure fails this task only (logged by Celery), and the next scan
    finds the pairs."""
    return duplicates.duplicate_check_memories(memory_ids=memory_ids)


@shared_task(bind=True, acks_late=True, name="search.tasks.run_duplicate_scan")
def run_duplicate_scan(self, scan_id: int) -> str:
    """Run one recorded duplicate scan (`duplicates.duplicate_scan_execute`): the dashboard's scan
    button and the API's; its errors are recorded on the scan. A redelivered task may take over a
    scan left running."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return duplicates.duplicate_scan_execute(scan_id=scan_id, reclaim=redelivered)


@shared_task(acks_late=True, name="search.tasks.scan_duplicates")
def scan_duplicates(uid: str | None = None, threshold: float | None = None) -> dict:
    """Scan one user (or every user) for duplicate pairs, unrecorded: what scans queued before
    scans were recorded (`run_duplicate_scan`) still run as."""
    return duplicates.duplicate_scan(uid=uid, threshold=threshold)
