"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 in a thread, which keeps every
request it gets (when, headers, raw body) and answers each with the next status of a script."""

import json
import re
import ssl
import subprocess
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

    def __init__(self, statuses: list[int] | None = None, default: int = 200, *, tls: tuple[str, str] | None = None):
        """`tls`: (certificate file, key file): an https receiver."""
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
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/omi"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://127.0.0.1:{self.port}/hooks/omi"

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


def self_signed(directory: Path, name: str) -> tuple[str, str]:
    """A certificate for the host `name` (and its key), signed by itself: (cert file, key file)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
        + ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def documented_verifier():
    """The verification snippet of README.md's "Webhooks" section, as a reader would paste it:
    its function `verify_omi_signature(secret, header, body, tolerance=300)`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README.md (webhook-verify)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_omi_signature"]
