# gunicorn settings for `make run`; production may use its own.

# Seconds an idle keep-alive connection is held open. gunicorn's default (2 s) races a client that
# reuses its connection after pausing about 2 s: the server closes the socket as the request is
# sent, and the client gets a reset with no answer (5 of 966 requests in bench/load.py's soak, with
# 2 s between a client's requests). gunicorn's docs advise 1 to 5 s when clients connect directly;
# a held connection stays with one worker process, so longer would spread clients less evenly.
keepalive = 5

# The longest request line (method, path and query string), in bytes: gunicorn's largest bound,
# against its default of 4,094. A longer one is refused by gunicorn itself (414, in HTML); up to this,
# the API answers a bad query in its own error shape (the schema fuzz test's long lists of query
# parameters reached 4,355).
limit_request_line = 8190


def post_worker_init(worker):
    """Load the embedding model when a web worker starts, not in its first search."""
    from memories.parts.embedders import get_embedder

    get_embedder().warm_up()
