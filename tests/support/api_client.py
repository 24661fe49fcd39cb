"""Calls to a real server's API (gunicorn started by a test), with the answer's status, body,
headers and how long it took."""

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field


@dataclass
class Answer:
    status: int
    json: dict | list | None
    seconds: float
    headers: dict = field(default_factory=dict)


def call(base: str, key: str, method: str, path: str, body: dict | None = None, *, timeout: float = 60) -> Answer:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, headers = exc.code, exc.read(), dict(exc.headers)
    return Answer(status, json.loads(raw) if raw else None, time.monotonic() - started, headers)
