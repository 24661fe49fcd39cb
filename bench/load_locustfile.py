"""The clients of bench/load.py (run by it with `locust --headless`; not meant to be run alone).

Each client searches (weight 80) or creates a memory (weight 20), with no pause between requests
unless LOAD_WAIT says so. Every answered request is written as one line to LOAD_LOG:
`epoch seconds \t name \t status \t milliseconds \t memory id (a create's 201)`; load.py computes
its figures from those lines. Set by load.py: LOAD_API_KEY, LOAD_UIDS (comma-separated), LOAD_LOG,
LOAD_SEED, LOAD_WAIT (seconds between a client's requests).
"""

import itertools
import os
import random
import sys
import time

from load_texts import search_body, transcript
from locust import FastHttpUser, constant, events, task

KEY = os.environ["LOAD_API_KEY"]
UIDS = os.environ["LOAD_UIDS"].split(",")
SEED = os.environ.get("LOAD_SEED", "0")
LOG = open(os.environ["LOAD_LOG"], "a", buffering=1)  # noqa: SIM115 (closed when locust quits)
_clients = itertools.count()
_creates = itertools.count()


@events.quitting.add_listener
def _close_log(**_kwargs):
    LOG.close()


class ApiClient(FastHttpUser):
    wait_time = constant(float(os.environ.get("LOAD_WAIT", "0")))

    def on_start(self):
        self.rng = random.Random(f"{SEED}-{next(_clients)}")
        self.headers = {"X-API-Key": KEY}

    @task(80)
    def search(self):
        strategy, body = search_body(self.rng, self.rng.choice(UIDS))
        self._post("/api/v1/search", body, f"search {strategy}", expect=200)

    @task(20)
    def create(self):
        body = {"uid": self.rng.choice(UIDS), **transcript(self.rng, f"load{SEED}-{next(_creates)}")}
        self._post("/api/v1/memories", body, "create", expect=201)

    def _post(self, path: str, body: dict, name: str, *, expect: int) -> None:
        started = time.perf_counter()
        with self.client.post(path, json=body, headers=self.headers, name=name, catch_response=True) as response:
            elapsed_ms = (time.perf_counter() - started) * 1000
            memory_id = ""
            if response.status_code == expect:
                response.success()
                if expect == 201:
                    memory_id = str(response.json()["id"])
            else:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                if not response.status_code:  # no answer: say why in locust.log
                    print(f"no answer to {name}: {response.error!r}", file=sys.stderr)
        LOG.write(f"{time.time():.3f}\t{name}\t{response.status_code or 0}\t{elapsed_ms:.1f}\t{memory_id}\n")
