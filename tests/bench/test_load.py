"""The load bench in its bounded form, as CI runs it: real processes on PostgreSQL and Redis."""

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from tests.support.processes import ROOT, redis_url_or_skip

pytestmark = pytest.mark.load


def _bench_database_url() -> str:
    """A database of the test run's own beside the configured one (the bench drops and makes it)."""
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("postgresql"):
        pytest.skip("the load bench runs on PostgreSQL only (DATABASE_URL)")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    name = db["NAME"].removeprefix("test_")
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/test_{name}_load"


def _database_exists(url: str) -> bool:
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_short_load_loses_no_memory_answers_no_5xx_and_leaves_nothing_behind(tmp_path):
    database_url = _bench_database_url()
    redis_url = redis_url_or_skip()
    figures_file = tmp_path / "figures.json"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [
            sys.executable,
            "bench/load.py",
            *("--seconds", "20", "--clients", "4", "--wait", "0.1", "--users", "4", "--per-user", "5"),
            *("--database-url", database_url, "--redis-url", redis_url),
            *("--json", str(figures_file), "--logs", str(tmp_path / "logs")),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    figures = json.loads(figures_file.read_text())

    endpoints = figures["endpoints"]
    assert endpoints["create"]["requests"] > 0 and endpoints["search (all)"]["requests"] > 0
    assert figures["server_errors"] == 0 and figures["errors_by_status"] == {}
    assert figures["drained"]
    assert figures["lost"] == 0 and figures["created"] == endpoints["create"]["requests"]
    assert figures["create_to_indexed_s"]["n"] == figures["created"] - figures["failed_with_reason"]
    assert figures["reconcile"] == {"missing": 0, "orphaned": 0, "metadata_differs": 0}
    # the world is gone: every process the bench started, and its database
    assert figures["pids"] and not [pid for pid in figures["pids"] if _alive(pid)]
    assert not _database_exists(database_url)
