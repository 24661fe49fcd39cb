"""/metrics, /healthz and /readyz on real processes: gunicorn with two workers and a Celery worker
sharing PROMETHEUS_MULTIPROC_DIR, and a server whose database is unreachable."""

import json
import os
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.processes import celery_worker, free_port, redis_url_or_skip, service_env, web_server
from tests.support.transcripts import BUDGET, DENTIST, STANDUP


def get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def create(base: str, key: str, transcript: str) -> int:
    request = urllib.request.Request(
        f"{base}/api/v1/memories",
        data=json.dumps({"uid": "alice", "transcript": transcript}).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())["id"]


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    status, body = get(f"{base}/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)  # the server and the worker must see the key: real commits
def test_every_scrape_adds_up_the_web_workers_and_the_celery_worker(tmp_path):
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**service_env(redis_url_or_skip()), "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    key = api_key_create(name="metrics test", actor=Actor.command())[1]

    with web_server(env, tmp_path / "web.log", workers=2) as base, celery_worker(env, tmp_path / "worker.log"):
        ids = [create(base, key, transcript) for transcript in (DENTIST, BUDGET, STANDUP)]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            statuses = {json.loads(get(f"{base}/api/v1/memories/{i}", key)[1])["status"] for i in ids}
            if statuses <= {"indexed", "failed"}:
                break
            time.sleep(0.3)
        assert statuses == {"indexed"}, (tmp_path / "worker.log").read_text()[-3000:]
        scrapes = [scrape(base) for _ in range(6)]  # answered by either web worker

    for samples in scrapes:
        assert value(samples, "omi_http_requests_total", endpoint="/api/v1/memories", method="POST", status="201") == 3
        for stage in ("extract", "embed", "upsert", "finish"):  # counted by the Celery worker's process
            assert value(samples, "omi_pipeline_stage_duration_seconds_count", stage=stage) == 3
        assert value(samples, "omi_memories", status="indexed") == 3 and value(samples, "omi_queue_depth") == 0
    writers = {path.stem.rsplit("_", 1)[1] for path in shared.glob("*.db")}
    assert len(writers) >= 2  # the worker's and at least one web worker's files, added up


def test_with_the_database_unreachable_healthz_answers_and_readyz_names_it(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/omi_memory",  # nothing listens there
        "READYZ_TIMEOUT": "2",
        "TORCH_THREADS": "1",
    }
    env.pop("REDIS_URL", None)

    with web_server(env, tmp_path / "web.log", wait_for="/healthz") as base:
        alive = get(f"{base}/healthz")
        ready = get(f"{base}/readyz")

    assert alive == (200, b'{"status": "ok"}')
    status, body = ready
    report = json.loads(body)
    assert status == 503 and report["status"] == "unavailable"
    assert {"database", "vector_store"} <= set(report["failed"])
    assert not report["checks"]["database"]["ok"] and report["checks"]["database"]["error"]
