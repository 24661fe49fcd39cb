"""The pipeline on the production shape: a web server and a real Celery worker on Redis."""

import json
import time
import urllib.request

import pytest

from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.processes import celery_worker, redis_url_or_skip, service_env, web_server
from tests.support.transcripts import DENTIST

# Real commits: a gunicorn and a Celery worker, other processes, must see the rows this test writes
# (the API key), and the rows they write are removed only by the flush after a transactional test.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def call(base: str, key: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_real_worker_takes_a_memory_from_queued_to_indexed(tmp_path):
    env = service_env(redis_url_or_skip())
    key = api_key_create(name="worker test", actor=Actor.command())[1]

    with web_server(env, tmp_path / "web.log") as base:
        created = call(base, key, "POST", "/memories", {"uid": "alice", "transcript": DENTIST})
        assert created["status"] == "queued"  # no worker yet: the task waits in Redis
        assert call(base, key, "GET", f"/memories/{created['id']}")["status"] == "queued"

        with celery_worker(env, tmp_path / "worker.log"):
            deadline = time.monotonic() + 180
            seen = []
            while time.monotonic() < deadline:
                memory = call(base, key, "GET", f"/memories/{created['id']}")
                if not seen or seen[-1] != memory["status"]:
                    seen.append(memory["status"])
                if memory["status"] in ("indexed", "failed"):
                    break
                time.sleep(0.2)

        assert seen[0] == "queued" and seen[-1] == "indexed", (seen, (tmp_path / "worker.log").read_text()[-3000:])
        assert memory["category"] == "health" and memory["action_items"]
        hits = call(base, key, "POST", "/search", {"uid": "alice", "query": "cracked crown"})["results"]
        assert [h["memory"]["id"] for h in hits] == [created["id"]]
