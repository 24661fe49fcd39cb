# gunicorn settings for `make run`; production may use its own.


def post_worker_init(worker):
    """Load the embedding model when a web worker starts, not in its first search."""
    from memories.parts.embedders import get_embedder

    get_embedder().warm_up()
