"""What a load balancer, an orchestrator and Prometheus ask: `/healthz`, `/readyz`, `/metrics`.

- `/healthz`: the process answers (200, no database, no other service asked).
- `/readyz`: what the service needs answers, each checked at once within READYZ_TIMEOUT: the
  database, Redis (the broker, when REDIS_URL is set), the vector store, and the local model
  loaded in this process (when the embedder runs one; a check that finds it unloaded starts
  loading it). 200, or 503 with `failed` naming what did not answer and each check's error.
  The checks are django-health-check's (`Database`, `Redis`) and two of ours on its base class,
  run by its runner; the JSON answer is ours (its view answers 500 in another shape).
- `/metrics`: Prometheus' text format, to METRICS_NETWORKS or METRICS_TOKEN only
  (`omi_memory.metrics.scrape_refusal`): the processes' counters and histograms
  (`omi_memory.metrics`), and what is read from the database at each scrape (`StateCollector`).
"""

import asyncio
import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable

from omi_memory import metrics
from omi_memory.errors import BackendError

from . import selectors
from .parts.embedders import get_embedder
from .parts.vectorstores import get_vector_store

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class VectorStoreCheck(HealthCheck):
    """The configured vector store answers (the local store: its table; Pinecone: index stats)."""

    def run(self) -> None:
        try:
            get_vector_store().ping()
        except BackendError as exc:
            raise ServiceUnavailable(str(exc)) from exc
        except Exception as exc:  # e.g. ImproperlyConfigured: said as it is
            raise ServiceUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()  # this thread's, opened by the local store


_loading = threading.Lock()


@dataclasses.dataclass
class ModelCheck(HealthCheck):
    """The local model is loaded in this process; if not, loading starts (once) and it is not ready."""

    def run(self) -> None:
        embedder = get_embedder()
        if embedder.loaded():
            return
        if _loading.acquire(blocking=False):
            threading.Thread(target=_warm_up, args=(embedder,), name="readyz-warm-up", daemon=True).start()
        raise ServiceUnavailable(f"the {embedder.name} model {embedder.model} is loading")


def _warm_up(embedder) -> None:
    try:
        embedder.warm_up()
    except Exception:
        logger.exception("loading the %s model failed", embedder.name)
    finally:
        _loading.release()


def readiness_checks() -> dict[str, HealthCheck]:
    """The checks /readyz runs, by the name it reports them under."""
    timeout = timedelta(seconds=settings.READYZ_TIMEOUT)
    checks: dict[str, HealthCheck] = {"database": Database()}
    if settings.REDIS_URL:
        from health_check.contrib.redis import Redis
        from redis.asyncio import Redis as RedisClient

        url, seconds = settings.REDIS_URL, settings.READYZ_TIMEOUT
        checks["redis"] = Redis(
            client_factory=lambda: RedisClient.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
        )
    checks["vector_store"] = VectorStoreCheck()
    if get_embedder().loaded() is not None:
        checks["model"] = ModelCheck()
    for check in checks.values():
        check.timeout = timeout
    return checks


def readiness() -> dict:
    """Run every readiness check at once; what each said."""
    checks = readiness_checks()
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")

    async def run_all() -> list[HealthCheckResult]:
        return await asyncio.gather(*(check.get_result(pool) for check in checks.values()))

    try:
        results = asyncio.run(run_all())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a check past its timeout is not waited for
    report = {
        name: {"ok": result.error is None, "seconds": round(result.time_taken, 4)}
        | ({"error": str(result.error)} if result.error is not None else {})
        for name, result in zip(checks, results)
    }
    failed = [name for name, outcome in report.items() if not outcome["ok"]]
    return {"status": "unavailable" if failed else "ok", "failed": failed, "checks": report}


def _uncached(response):
    add_never_cache_headers(response)
    return response


@require_GET
def healthz(request):
    """The process is alive: nothing else is asked."""
    return _uncached(JsonResponse({"status": "ok"}))


@require_GET
def readyz(request):
    body = readiness()
    return _uncached(JsonResponse(body, status=503 if body["failed"] else 200))


class StateCollector:
    """What the database says at scrape time: memories by status, the queue's depth and its oldest
    memory's wait, the last reconciliation's findings. Right whichever process is scraped."""

    def collect(self):
        try:
            queue = selectors.queue_state()
            runs = selectors.reconcile_runs_latest()
        except DatabaseError as exc:
            logger.warning("metrics: the database did not answer: %s", exc)
            yield metrics.gauge_family("database_up", "Whether the database answered this scrape", {(): 0})
            return
        yield metrics.gauge_family("database_up", "Whether the database answered this scrape", {(): 1})
        counts = queue["counts"]
        yield metrics.gauge_family(
            "memories", "Memories by status", {(status,): n for status, n in counts.items()}, labels=["status"]
        )
        yield metrics.gauge_family(
            "queue_depth",
            "Memories waiting for the pipeline or in it (queued + processing)",
            {(): counts["queued"] + counts["processing"]},
        )
        yield metrics.gauge_family(
            "queue_oldest_age_seconds",
            "How long the memory waiting longest (queued or processing) has been in its status; 0 when none waits",
            {(): queue["oldest_waiting_seconds"]},
        )
        last = runs["last"]
        if last is not None:
            yield metrics.gauge_family(
                "reconcile_findings",
                "What the last reconciliation found, by kind (missing vectors, orphans, other metadata)",
                {("missing",): last.missing, ("orphan",): last.orphaned, ("metadata",): last.mismatched},
                labels=["kind"],
            )
            yield metrics.gauge_family(
                "reconcile_last_run_timestamp_seconds",
                "When the last reconciliation finished (Unix time)",
                {(): last.finished_at.timestamp() if last.finished_at else 0},
            )
            yield metrics.gauge_family(
                "reconcile_last_run_failed",
                "Whether the last reconciliation failed",
                {(): int(last.status == "failed")},
            )


@require_GET
def prometheus_metrics(request):
    refusal = metrics.scrape_refusal(request)
    if refusal is not None:
        status, message = refusal
        response = HttpResponse(f"{message}\n", status=status, content_type="text/plain; charset=utf-8")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return _uncached(response)
    body, content_type = metrics.exposition_for(request.headers.get("Accept"), [StateCollector()])
    return _uncached(HttpResponse(body, content_type=content_type))


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", prometheus_metrics, name="metrics"),
]
