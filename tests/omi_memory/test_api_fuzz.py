"""The API fuzzed by schemathesis, against a real server: no server error, and every answer one the
OpenAPI document describes (status code, content type, body, headers); schema-valid requests are
accepted and schema-invalid ones refused.

gunicorn serves the app on 127.0.0.1 on the test database (rows made here are gone after the
test), with tasks in-process (no Redis), so the memories the fuzzer creates run through the real
pipeline. Its API key is scoped to one uid. The run is bounded (MAX_SECONDS, a fixed SEED, a number
of cases per operation) and prints how many cases it ran. tests/support/fuzz_hooks.py keeps the
generated requests to the rule JSON Schema cannot state (an end not before its start).
"""

import os
import re
import subprocess
import sys

import pytest

from memories.models import UID_PATTERN
from memories.services import api_key_create
from tests.support.actors import COMMAND
from tests.support.processes import ROOT, database_url_for_subprocess, web_server

SEED = 20261101
MAX_SECONDS = 110
CASES_PER_OPERATION = 100
FUZZ_UID = "fuzz-user"


@pytest.mark.fuzz
def test_fuzzed_api_answers_no_server_error_and_nothing_its_schema_does_not_document(
    transactional_db, tmp_path, capsys
):
    _, key = api_key_create(name="fuzz", uid=FUZZ_UID, actor=COMMAND)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "TORCH_THREADS": "1",
        "FUZZ_UID": FUZZ_UID,
        "FUZZ_UID_PATTERN": UID_PATTERN,
        "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks",
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
        # Thousands of requests from one key: the operations are fuzzed, not the rates (a 429 is
        # documented and would pass, but would hide the operation; test_throttles tests them).
        **{f"THROTTLE_{kind}": "off" for kind in ("SEARCH", "WRITES", "READS", "ANON")},
    }
    for name in ("REDIS_URL", "EMBEDDING_CACHE_URL"):
        env.pop(name, None)  # tasks in the server's process; no cache to share
    with web_server(env, tmp_path / "server.log") as base:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/api/v1/openapi.json",
                "--header",
                f"X-API-Key: {key}",
                "--checks",
                "all",
                "--seed",
                str(SEED),
                "--max-examples",
                str(CASES_PER_OPERATION),
                "--max-time",
                str(MAX_SECONDS),
                "--workers",
                "1",
                "--request-timeout",
                "60",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=MAX_SECONDS + 120,
        )
    output = run.stdout + run.stderr
    cases = re.search(r"(\d+) generated", output)
    with capsys.disabled():
        print(f"\nschemathesis, seed {SEED}: {cases.group(1) if cases else '?'} cases in {MAX_SECONDS} s at most")
    server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert run.returncode == 0, f"{output[-12000:]}\n--- server log (end) ---\n{server_log[-4000:]}"
    assert cases and int(cases.group(1)) >= 1000


def test_a_query_string_past_gunicorns_default_line_is_refused_by_the_api_in_its_error_shape(
    transactional_db, tmp_path
):
    """A fuzz finding: a request line over 4,094 bytes got gunicorn's own HTML 414; the server runs
    with `scripts/gunicorn.conf.py` (as `make run` does), so the API reads it and refuses it."""
    from urllib.parse import urlencode

    from tests.support.api_client import call

    _, key = api_key_create(name="long lines", uid=FUZZ_UID, actor=COMMAND)
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "TORCH_THREADS": "1"}
    env.pop("REDIS_URL", None)
    query = urlencode([("split", "dev")] + [("strategy", "hybrid" * 8)] * 90)  # about 5,300 bytes
    with web_server(env, tmp_path / "server.log") as base:
        answer = call(base, key, "GET", f"/evaluation/runs?{query}")

    assert len(f"GET /api/v1/evaluation/runs?{query} HTTP/1.1") > 4094
    assert answer.status == 422, answer.json
    assert answer.json["error"]["code"] == "validation_error" and "strategy" in answer.json["error"]["message"]
