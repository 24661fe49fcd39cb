"""Celery tasks: thin, ids only, over the processing engine and the services.

Names are fixed (`name=`), so messages queued before a deploy that moves code still find their task.
Retries are Celery's own: `autoretry_for` the transient error only, exponential backoff with full
jitter, a bounded number of attempts; the last attempt records a failure the dashboard shows.
What a lost message or a dead worker leaves undone, `sweep` (run by Celery beat) sends again.
"""

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from omi_memory.errors import BackendError

from . import processing, reconcile, services
from .processing import RetryLater

PIPELINE_RETRY = {
    "autoretry_for": (RetryLater,),
    "max_retries": settings.PIPELINE_MAX_RETRIES,
    "retry_backoff": settings.PIPELINE_RETRY_BACKOFF_SECONDS or False,
    "retry_backoff_max": settings.PIPELINE_RETRY_BACKOFF_MAX_SECONDS,
    "retry_jitter": True,
    "default_retry_delay": 0,
}
# A store that is down may take a while to come back: deletes are retried for longer (about half
# an hour in all) before the memory's vectors are left to the sweeper.
VECTOR_DELETE_RETRIES = 10


def _process(task, memory_ids: list[int]) -> dict[int, str]:
    """The pipeline for these memories; a transient failure raises RetryLater (retried by Celery),
    except on the last attempt, which records it on the memory as `failed`."""
    final = task.request.retries >= task.max_retries
    return processing.memory_process_many(memory_ids=memory_ids, final_attempt=final, attempt=task.request.retries)


@shared_task(bind=True, acks_late=True, name="memories.tasks.process_memory", **PIPELINE_RETRY)
def process_memory(self, memory_id: int) -> str:
    """Run the pipeline for one memory."""
    return _process(self, [memory_id])[memory_id]


@shared_task(bind=True, acks_late=True, name="memories.tasks.process_memories", **PIPELINE_RETRY)
def process_memories(self, memory_ids: list[int]) -> dict[str, str]:
    """Run the pipeline for many memories at once (batched embedding and upserts); a retry takes
    again only those that failed transiently (the others are no longer claimable)."""
    return {str(k): v for k, v in _process(self, memory_ids).items()}


@shared_task(
    bind=True,
    acks_late=True,
    name="memories.tasks.delete_memory_vectors",
    **{**PIPELINE_RETRY, "max_retries": VECTOR_DELETE_RETRIES},
)
def delete_memory_vectors(self, memory_id: int) -> None:
    """Remove a deleted memory's vectors; retried while the store is unreachable."""
    try:
        services.memory_remove_vectors(memory_id=memory_id, attempt=self.request.retries)
    except BackendError as exc:
        if exc.permanent:
            raise
        raise RetryLater(str(exc)) from exc


@shared_task(name="memories.tasks.sweep")
def sweep() -> dict[str, int]:
    """Send again the work whose lease has passed (run by Celery beat every PIPELINE_SWEEP_SECONDS)."""
    done = services.pipeline_sweep()
    return {"queued": len(done.queued), "deleted": len(done.deleted), "failed": len(done.failed)}


@shared_task(acks_late=True, name="memories.tasks.reconcile_vectors")
def reconcile_vectors(run_id: int | None = None) -> str:
    """Compare the database's vectors with the store: a run started from the dashboard
    (`run_id`), or, from Celery beat, a periodic one (skipped while another is under way)."""
    if run_id is None:
        run = reconcile.reconcile_scheduled()
        return run.status if run is not None else "skipped"
    return reconcile.reconcile_run_execute(run_id=run_id).status


@worker_process_init.connect
def warm_up(**kwargs) -> None:
    """Load the embedding model when a worker process starts, not in its first task."""
    from .parts.embedders import get_embedder

    get_embedder().warm_up()
