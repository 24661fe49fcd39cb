"""/healthz, /readyz and /metrics in this process (memories/monitoring.py, omi_memory/metrics.py);
tests/memories/test_monitoring_processes.py has them on real servers and workers."""

import ipaddress
import threading
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from memories.models import Memory, ReconcileRun
from memories.parts.embedders import get_embedder
from memories.parts.embedders.local import LocalEmbedder
from tests.support.parts import FlakyExtractor
from tests.support.processes import free_port, redis_url_or_skip
from tests.support.transcripts import BUDGET, DENTIST


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# /healthz and /readyz


def test_healthz_answers_without_asking_the_database():
    response = Client().get("/healthz")  # no database access is allowed in this test

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_200_when_the_database_store_and_model_answer():
    get_embedder().warm_up()

    response = Client().get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["failed"] == []
    assert set(body["checks"]) == {"database", "vector_store", "model"}  # no Redis configured: not asked
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_asks_redis_when_it_is_configured(settings):
    get_embedder().warm_up()
    settings.REDIS_URL = redis_url_or_skip()

    response = Client().get("/readyz")

    assert response.status_code == 200 and response.json()["checks"]["redis"]["ok"]


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_unreachable(settings):
    get_embedder().warm_up()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.READYZ_TIMEOUT = 1.0

    response = Client().get("/readyz")

    body = response.json()
    assert response.status_code == 503 and body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert "Unable to connect to Redis" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] and body["checks"]["vector_store"]["ok"]


@pytest.mark.django_db
def test_readyz_names_the_vector_store_when_pinecone_fails(fake_pinecone, settings):
    get_embedder().warm_up()
    settings.VECTOR_STORE = "pinecone"
    fake_pinecone.fail_always("/describe_index_stats", "503")

    body = Client().get("/readyz").json()

    assert body["failed"] == ["vector_store"]
    assert "pinecone describe_index_stats: HTTP 503" in body["checks"]["vector_store"]["error"]


@pytest.mark.django_db
def test_readyz_says_the_model_is_loading_and_loads_it(monkeypatch):
    loaded = threading.Event()
    monkeypatch.setattr(LocalEmbedder, "loaded", lambda self: loaded.is_set())
    monkeypatch.setattr(LocalEmbedder, "warm_up", lambda self: loaded.set())

    first = Client().get("/readyz")
    assert first.status_code == 503 and first.json()["failed"] == ["model"]
    assert "all-MiniLM-L6-v2 is loading" in first.json()["checks"]["model"]["error"]

    assert loaded.wait(5)
    assert Client().get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_leaves_out_the_model_when_the_embedder_runs_none(production_parts):
    body = Client().get("/readyz").json()

    assert set(body["checks"]) == {"database", "vector_store"} and body["status"] == "ok"


# Who may scrape /metrics


@pytest.mark.django_db
def test_metrics_are_served_to_this_host_and_refused_to_others():
    assert Client().get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    refused = Client(REMOTE_ADDR="203.0.113.5").get("/metrics")
    assert refused.status_code == 403 and b"METRICS_NETWORKS" in refused.content


@pytest.mark.django_db
def test_behind_a_proxy_the_clients_address_counts_not_the_proxys(settings):
    settings.TRUSTED_PROXIES = 1
    through_proxy = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")

    assert through_proxy.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_a_token_opens_metrics_from_anywhere_and_a_network_setting_widens_them(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    far = {"REMOTE_ADDR": "203.0.113.5"}

    missing = Client(**far).get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert Client(**far, HTTP_AUTHORIZATION="Bearer wrong").get("/metrics").status_code == 401
    assert Client(**far, HTTP_AUTHORIZATION="Bearer s3cret-token").get("/metrics").status_code == 200

    settings.METRICS_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client().get("/metrics").status_code == 401  # 127.0.0.1 is no longer among them


# What /metrics shows


@pytest.mark.django_db
def test_a_search_shows_in_its_strategys_latency_and_in_the_requests_by_endpoint(api, remember):
    remember("alice", DENTIST)
    before = scrape()

    assert api.post("/search", {"uid": "alice", "query": "crown", "strategy": "semantic"}).status_code == 200
    assert api.post("/search", {"uid": "alice", "query": "crown", "k": 0}).status_code == 422

    after = scrape()
    count = "omi_search_duration_seconds_count"
    assert value(after, count, strategy="semantic") - value(before, count, strategy="semantic") == 1
    assert value(after, count, strategy="hybrid") == value(before, count, strategy="hybrid")
    assert value(after, "omi_search_duration_seconds_sum", strategy="semantic") > value(
        before, "omi_search_duration_seconds_sum", strategy="semantic"
    )
    requests = "omi_http_requests_total"
    endpoint = {"endpoint": "/api/v1/search", "method": "POST"}
    assert value(after, requests, **endpoint, status="200") - value(before, requests, **endpoint, status="200") == 1
    assert value(after, requests, **endpoint, status="422") - value(before, requests, **endpoint, status="422") == 1
    assert value(after, requests, endpoint="/metrics", method="GET", status="200") >= 1


@pytest.mark.django_db
def test_memories_by_status_the_queue_and_the_last_reconciliation_are_read_from_the_database():
    for status in ("indexed", "indexed", "failed", "processing", "queued"):
        Memory.objects.create(uid="alice", transcript="hello", status=status)
    Memory.objects.filter(status="queued").update(status="queued", updated_at=timezone.now() - timedelta(seconds=90))
    ReconcileRun.objects.create(
        trigger="schedule", status="done", missing=3, orphaned=1, finished_at=timezone.now() - timedelta(hours=1)
    )
    ReconcileRun.objects.create(trigger="schedule", status="running", missing=99)  # not finished: not shown

    samples = scrape()

    assert (
        value(samples, "omi_memories", status="indexed") == 2 and value(samples, "omi_memories", status="queued") == 1
    )
    assert value(samples, "omi_queue_depth") == 2
    assert 90 <= value(samples, "omi_queue_oldest_age_seconds") < 150
    findings = {kind: value(samples, "omi_reconcile_findings", kind=kind) for kind in ("missing", "orphan", "metadata")}
    assert findings == {"missing": 3, "orphan": 1, "metadata": 0}
    assert value(samples, "omi_reconcile_last_run_failed") == 0 and value(samples, "omi_database_up") == 1


@pytest.mark.django_db
def test_a_memory_that_waited_long_ago_and_was_requeued_now_counts_from_now():
    memory = Memory.objects.create(uid="alice", transcript="hello", status="failed")
    Memory.objects.filter(id=memory.id).update(status="failed", updated_at=timezone.now() - timedelta(days=30))

    Memory.objects.filter(id=memory.id).update(status="queued")  # as a retry does

    assert value(scrape(), "omi_queue_oldest_age_seconds") < 60


@pytest.mark.django_db
def test_pipeline_stages_failures_and_embedding_cache_lookups_are_counted(remember, settings):
    stage = "omi_pipeline_stage_duration_seconds_count"
    before = scrape()

    remember("alice", DENTIST)
    settings.EXTRACTOR = "tests.support.parts.FlakyExtractor"
    FlakyExtractor.reset(failures=1, permanent=True)
    remember("alice", BUDGET)
    get_embedder().embed_query("what did the dentist say")
    get_embedder().embed_query("what did the dentist say")

    after = scrape()
    assert {
        name: value(after, stage, stage=name) - value(before, stage, stage=name)
        for name in ("extract", "embed", "upsert", "finish")
    } == {"extract": 2, "embed": 1, "upsert": 1, "finish": 2}
    failures = "omi_pipeline_failures_total"
    assert value(after, failures, reason="BackendError") - value(before, failures, reason="BackendError") == 1
    hits = "omi_embedding_cache_lookups_total"
    assert value(after, hits, cache="process", result="hit") - value(before, hits, cache="process", result="hit") >= 1
    assert value(after, hits, cache="process", result="miss") > value(before, hits, cache="process", result="miss")
