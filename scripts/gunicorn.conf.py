# gunicorn settings for `make run`; production may use its own.


def post_worker_init(worker):
    """Load the embedding model when a web worker starts, not in its first search (only what
    queries need when tasks run in Celery workers)."""
    from django.conf import settings

    from search.embedders import get_embedder

    get_embedder().warm_up(queries_only=not settings.CELERY_TASK_ALWAYS_EAGER)
