"""Celery tasks of the search app: thin, ids only, over the services."""

import logging

from celery import shared_task

from . import clustering

logger = logging.getLogger(__name__)


# Clusters ------------------------------------------------------------------------------------


@shared_task(bind=True, acks_late=True)
def cluster_memories(self, run_id: int) -> str:
    """Run one clustering (`search.clustering.cluster_run_execute`); its errors are recorded on
    the run, so there is nothing to retry. A redelivered task may take over a run left running."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return clustering.cluster_run_execute(run_id=run_id, reclaim=redelivered)


# Duplicates ----------------------------------------------------------------------------------


@shared_task(acks_late=True)
def check_duplicates(memory_ids: list[int]) -> dict | None:
    """Check newly indexed memories against their users' others. A failure is logged, never
    raised: the memories are indexed whatever happens here, and the next scan finds the pairs."""
    from .duplicates import duplicate_check_memories

    try:
        return duplicate_check_memories(memory_ids=memory_ids)
    except Exception:  # noqa: BLE001 - logged; the pipeline's outcome stands
        logger.exception("duplicate check of memories %s failed", memory_ids)
        return None


@shared_task(acks_late=True)
def scan_duplicates(uid: str | None = None, threshold: float | None = None) -> dict:
    """Scan one user (or every user) for duplicate pairs: the dashboard's scan button."""
    from .duplicates import duplicate_scan

    return duplicate_scan(uid=uid, threshold=threshold)
