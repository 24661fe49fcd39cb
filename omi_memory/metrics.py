"""Prometheus metrics: every metric the service exports is defined here (prometheus_client).

Counters and histograms are written by the process that does the work: the web workers (requests,
searches) and the Celery workers (pipeline stages, retries, failures, embedding cache). With
several processes, set PROMETHEUS_MULTIPROC_DIR to one empty directory for every process of a host
before they start (`make run` does, and empties it): each process writes its values to files
there, and a scrape of `/metrics` on any web worker adds up those of every process of the host
(prometheus_client's multiprocess mode). Without it each process counts alone, which is right for
one process (a laptop, tests).

What is read from the database (memories by status, queue depth and the age of the oldest waiting
memory, the last reconciliation's findings) is not counted by any process: it is read when
`/metrics` is scraped (`gauge_family`, fed by `memories.monitoring`), so it is right whichever
process answers.
"""

import hmac
import ipaddress
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, exposition
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .actors import client_ip

PREFIX = "omi_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

# Written by the web workers
HTTP_REQUESTS = Counter(
    f"{PREFIX}http_requests",
    "HTTP requests answered, by endpoint (the URL pattern), method and status",
    ["endpoint", "method", "status"],
)
HTTP_DURATION = Histogram(
    f"{PREFIX}http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint (the URL pattern) and method",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
SEARCH_DURATION = Histogram(
    f"{PREFIX}search_duration_seconds",
    "Time to answer a search (embedding, ranking, reading the memories, logging), by strategy",
    ["strategy"],
    buckets=LATENCY_BUCKETS,
)

# Written by whoever runs the pipeline (the Celery workers; the web process without Redis)
PIPELINE_STAGE = Histogram(
    f"{PREFIX}pipeline_stage_duration_seconds",
    "Time of one pipeline stage for one batch of memories: extract, embed, upsert, finish",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
PIPELINE_RETRIES = Counter(
    f"{PREFIX}pipeline_retries",
    "Memories put back in the queue after a transient failure, by reason (the error's type)",
    ["reason"],
)
PIPELINE_FAILURES = Counter(
    f"{PREFIX}pipeline_failures",
    "Memories marked failed, by reason (the error's type)",
    ["reason"],
)
EMBEDDING_CACHE = Counter(
    f"{PREFIX}embedding_cache_lookups",
    "Texts looked up in an embedding cache (process: this process's memory; redis: shared), by result",
    ["cache", "result"],
)
MODEL_TOKENS = Counter(
    f"{PREFIX}model_tokens",
    "Tokens the local model read, special tokens included (each forward pass of the runtime)",
)

# Written by whoever delivers webhooks (the Celery workers; the web process without Redis)
WEBHOOK_ATTEMPTS = Counter(
    f"{PREFIX}webhook_attempts",
    "Webhook delivery attempts, by event type and outcome (delivered; failed: an error or an answer not 2xx)",
    ["event", "outcome"],
)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    """Observe the time the block takes (also when it raises) in `histogram` with these labels."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def gauge_family(name: str, documentation: str, values: dict[tuple[str, ...], float], labels=()):
    """A gauge read at scrape time (from the database), named as the others are."""
    family = GaugeMetricFamily(f"{PREFIX}{name}", documentation, labels=list(labels) or None)
    for label_values, value in values.items():
        if labels:
            family.add_metric(list(label_values), value)
        else:
            family.add_metric([], value)
    return family


class _ThisProcess:
    """The metrics counted by this process (no PROMETHEUS_MULTIPROC_DIR: one process counts alone)."""

    def collect(self):
        return REGISTRY.collect()


def exposition_for(accept: str | None, collectors: Iterable) -> tuple[bytes, str]:
    """The text a scrape gets: the processes' counters and histograms (every process of this host
    in multiprocess mode) and the `collectors` read now; with its content type."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    encoder, content_type = exposition.choose_encoder(accept or "")
    return encoder(registry), content_type


def scrape_refusal(request) -> tuple[int, str] | None:
    """Why `/metrics` is refused to this request (status, message), or None when it may scrape.

    Allowed: a request with `Authorization: Bearer <METRICS_TOKEN>` (when METRICS_TOKEN is set),
    or from an address in METRICS_NETWORKS (default: this host only). The address is the client's
    as the throttles see it: behind TRUSTED_PROXIES, the one they saw, not the proxy's."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header:
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 401, "wrong metrics token"
    address = client_ip(request)
    if address and any(ipaddress.ip_address(address) in network for network in settings.METRICS_NETWORKS):
        return None
    if token:
        return 401, "a metrics token is required (Authorization: Bearer ...)"
    return 403, "metrics are served to METRICS_NETWORKS only"


def endpoint_of(request) -> str:
    """The URL pattern a request was routed to (`api/v1/memories/<int:memory_id>`), so that a
    label has as many values as there are endpoints; `unrouted` for anything else."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route is not None else "unrouted"


class RequestMetricsMiddleware:
    """Counts every answer by endpoint, method and status, and times it (first in MIDDLEWARE)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        _count_answer(endpoint_of(request), request.method, str(response.status_code), started)
        return response


def _count_answer(endpoint: str, method: str, status: str, started: float) -> None:
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(endpoint, method, status).inc()
    HTTP_DURATION.labels(endpoint, method).observe(time.perf_counter() - started)


def counted_wsgi(app, endpoint: str):
    """`app` (a WSGI app that Django does not serve: the MCP server under /mcp) with its answers
    counted and timed as RequestMetricsMiddleware counts Django's, all under `endpoint`; an answer
    is counted once its body is sent (or the app raised: 500)."""

    def counted(environ, start_response):
        started = time.perf_counter()
        status = ["500"]

        def start(line, headers, exc_info=None):
            status[0] = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        def record():
            _count_answer(endpoint, environ.get("REQUEST_METHOD", ""), status[0], started)

        try:
            body = app(environ, start)
        except BaseException:
            record()
            raise

        def answer():
            try:
                yield from body
            finally:
                if hasattr(body, "close"):
                    body.close()
                record()

        return answer()

    return counted
