# gunicorn settings for `make run`; production may use its own.

# Seconds an idle keep-alive connection is held open. gunicorn's default (2 s) races a client that
# reuses its connection after pausing about 2 s: the server closes the socket as the request is
# sent, and the client gets a reset with no answer (seen by bench/load.py with 2 s between
# requests). Behind a proxy, keep this above the proxy's own upstream idle timeout.
keepalive = 75


def post_worker_init(worker):
    """Load the embedding model when a web worker starts, not in its first search."""
    from memories.parts.embedders import get_embedder

    get_embedder().warm_up()
