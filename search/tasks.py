"""Celery tasks of the search app: thin, ids only, over the services."""

from celery import shared_task

from . import clustering


@shared_task(bind=True, acks_late=True)
def cluster_memories(self, run_id: int) -> str:
    """Run one clustering (`search.clustering.cluster_run_execute`); its errors are recorded on
    the run, so there is nothing to retry. A redelivered task may take over a run left running."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    return clustering.cluster_run_execute(run_id=run_id, reclaim=redelivered)
