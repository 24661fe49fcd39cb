"""Real processes for tests: a Celery worker and a web server, on the test database."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def database_url_for_subprocess() -> str:
    """A DATABASE_URL for the database this test run uses (the test database, not the real one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def redis_url_or_skip() -> str:
    """The Redis for tests; a missing Redis skips the test, unless CI says services are required."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(f"Redis is required but unreachable at {url}: {exc}")
        pytest.skip(f"Redis unreachable at {url}")
    client.flushdb()
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(args: list[str], env: dict, log: Path):
    """Run a process for the duration of the block; its output goes to `log`."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def service_env(redis_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "REDIS_URL": redis_url, "TORCH_THREADS": "1"}


def celery_worker(env: dict, log: Path):
    return running(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "omi_memory",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "info",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        env,
        log,
    )


@contextmanager
def web_server(env: dict, log: Path, *, workers: int = 1, wait_for: str = "/api/v1/openapi.json"):
    """gunicorn serving the app with `workers` processes; yields its base URL once it answers
    `wait_for` (a path)."""
    port = free_port()
    with running(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "omi_memory.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
        ],
        env,
        log,
    ) as process:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}{wait_for}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"web server did not start; see {log}") from None
                time.sleep(0.2)
        yield base
