"""Celery tasks: thin, ids only, over the services."""

import random

from celery import shared_task
from django.conf import settings

from omi_memory.errors import BackendError

from . import services


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter: 0..base*2^retries seconds."""
    return random.uniform(0, settings.PIPELINE_RETRY_BACKOFF_SECONDS * (2**retries))


@shared_task(bind=True, acks_late=True, max_retries=None)
def process_memory(self, memory_id: int) -> str:
    """Run the pipeline for one memory; transient failures are retried, then recorded."""
    final = self.request.retries >= settings.PIPELINE_MAX_RETRIES
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    try:
        return services.memory_process(memory_id=memory_id, final_attempt=final, reclaim=redelivered)
    except BackendError as exc:  # transient, and not the last attempt: the memory is queued again
        raise self.retry(exc=exc, countdown=backoff(self.request.retries))


@shared_task(bind=True, acks_late=True, max_retries=None)
def delete_memory_vectors(self, memory_id: int) -> None:
    """Remove a deleted memory's vectors; retried for as long as the store is unreachable."""
    try:
        services.memory_remove_vectors(memory_id=memory_id)
    except BackendError as exc:
        if exc.permanent or self.request.retries >= settings.PIPELINE_MAX_RETRIES * 3:
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries))
