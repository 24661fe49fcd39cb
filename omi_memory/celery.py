import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omi_memory.settings")

app = Celery("omi_memory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def warm_up(**kwargs) -> None:
    """Load the embedding model when a worker process starts, not in its first task."""
    from search.embedders import get_embedder

    get_embedder().warm_up()
