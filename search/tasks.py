"""Celery tasks of the search app: thin, ids only, over the services."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


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
