"""Celery tasks: thin, ids only, over the services."""

import random

from celery import shared_task
from django.conf import settings

from omi_memory.errors import BackendError

from . import services


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter: 0..base*2^retries seconds."""
    return random.uniform(0, settings.PIPELINE_RETRY_BACKOFF_SECONDS * (2**retries))


def _process(task, memory_ids: list[int], *, one: bool) -> dict[int, str]:
    final = task.request.retries >= settings.PIPELINE_MAX_RETRIES
    redelivered = bool((task.request.delivery_info or {}).get("redelivered"))
    try:
        return services.memory_process_many(memory_ids=memory_ids, final_attempt=final, reclaim=redelivered)
    except services.RetryLater as exc:  # transient: those memories are queued again, retry them
        args = (exc.memory_ids[0],) if one else (exc.memory_ids,)
        raise task.retry(args=args, exc=exc, countdown=backoff(task.request.retries))


@shared_task(bind=True, acks_late=True, max_retries=None)
def process_memory(self, memory_id: int) -> str:
    """Run the pipeline for one memory; transient failures are retried, then recorded."""
    return _process(self, [memory_id], one=True)[memory_id]


@shared_task(bind=True, acks_late=True, max_retries=None)
def process_memories(self, memory_ids: list[int]) -> dict[int, str]:
    """Run the pipeline for many memories at once (batched embedding and upserts); the ones
    that fail transiently are retried together, the others are done."""
    return {str(k): v for k, v in _process(self, memory_ids, one=False).items()}


@shared_task(bind=True, acks_late=True, max_retries=None)
def delete_memory_vectors(self, memory_id: int) -> None:
    """Remove a deleted memory's vectors; retried for as long as the store is unreachable."""
    try:
        services.memory_remove_vectors(memory_id=memory_id)
    except BackendError as exc:
        if exc.permanent or self.request.retries >= settings.PIPELINE_MAX_RETRIES * 3:
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries))
