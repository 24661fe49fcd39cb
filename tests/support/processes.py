"""Real processes for tests: Celery workers and beat, a web server and a Redis of their own, on
the test database."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
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
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM a process started in a session of its own, and the processes it started; SIGKILL
    them if they are still there 20 seconds later."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def kill(process: subprocess.Popen) -> None:
    """SIGKILL a process started by `running` and every process it started (a worker's pool)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def service_env(redis_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "REDIS_URL": redis_url, "TORCH_THREADS": "1"}


def celery_worker(env: dict, log: Path, *, concurrency: int | None = None, supervised: bool = False):
    """A Celery worker: one process (`--pool solo`), or a prefork pool of `concurrency` processes;
    `supervised`: started again whenever it exits, as a supervisor does in production."""
    pool = ["--pool", "solo"] if concurrency is None else ["--pool", "prefork", "--concurrency", str(concurrency)]
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "omi_memory",
        "worker",
        *pool,
        "--loglevel",
        "info",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    return Supervised(args, env, log) if supervised else running(args, env, log)


class Supervised:
    """A process run for the block and started again whenever it exits (as systemd's
    `Restart=always`, or scripts/run.sh, do); `exits` holds the exit codes seen so far."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.args, self.env, self.log = args, env, log
        self.exits: list[int] = []
        self._stop = threading.Event()

    def _start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            code = self.process.poll()
            if code is not None:
                self.exits.append(code)
                self._start()

    def __enter__(self) -> "Supervised":
        self._start()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._watcher.join()
        stop(self.process)


def celery_beat(env: dict, log: Path, schedule: Path):
    """Celery beat, sending the periodic tasks (the sweeper) every PIPELINE_SWEEP_SECONDS of `env`."""
    return running(
        [sys.executable, "-m", "celery", "-A", "omi_memory", "beat", "--schedule", str(schedule), "--loglevel", "info"],
        env,
        log,
    )


class RedisServer:
    """A Redis of the test's own on 127.0.0.1:`port`, without persistence (a restart loses every
    message), for faults that stop it: `start()`, `stop()`; as a context, started and stopped."""

    def __init__(self, port: int, logs: Path):
        if shutil.which("redis-server") is None:
            if os.environ.get("REQUIRE_SERVICES"):
                pytest.fail("redis-server is required but not installed")
            pytest.skip("redis-server is not installed")
        self.port, self.logs, self.url = port, logs, f"redis://127.0.0.1:{port}/0"
        self._running = None
        self._starts = 0

    def start(self) -> None:
        import redis

        self._starts += 1
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._running = running(args, dict(os.environ), self.logs / f"redis-{self._starts}.log")
        process = self._running.__enter__()
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.logs}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None

    def __enter__(self) -> "RedisServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


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
            "--config",  # what `make run` runs
            str(ROOT / "scripts" / "gunicorn.conf.py"),
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
