"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 in a thread, which keeps every
request it gets (when, headers, raw body) and answers each with the next status of a script."""

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Received:
    at: float  # time.monotonic() when it came
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """`with Receiver(statuses=[500, 500]) as receiver:` answers 500 twice, then `default` (200)."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200):
        self.statuses = list(statuses or [])
        self.default = default
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(time.monotonic(), self.path, dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver says no")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/omi"

    def __enter__(self) -> "Receiver":
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("X-Omi-Event") == event_type]

    def wait_for(self, count: int, seconds: float) -> list[Received]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


def documented_verifier():
    """The verification snippet of README.md's "Webhooks" section, as a reader would paste it:
    its function `verify_omi_signature(secret, header, body, tolerance=300)`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README.md (webhook-verify)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_omi_signature"]
