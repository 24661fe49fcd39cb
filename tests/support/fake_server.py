"""A base for small local fakes of remote HTTP APIs, for tests and benchmarks.

A fake runs a threaded HTTP/1.1 server on 127.0.0.1, records every request, can be slowed
down with `latency`, and can be told to fail requests to a path in chosen ways (`fail`,
`fail_always`). Subclasses register routes and validate request shapes strictly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

Request = dict[str, Any]
Route = Callable[[Request, "str | None"], Any]

STATUS_FAULTS = {"429": 429, "500": 500, "502": 502, "503": 503}
STATUS_MESSAGES = {
    429: "Rate limit reached, please retry later.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}


class HttpError(Exception):
    """An error answer, raised by a route; the server turns it into its JSON error body."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def require_keys(body: Any, required: set[str], allowed: set[str], where: str = "body") -> dict[str, Any]:
    """`body` as a JSON object with every required key and no key outside `allowed`, else a 400."""
    if not isinstance(body, dict):
        raise HttpError(400, f"{where} must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HttpError(400, f"{where} has unknown field(s): {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise HttpError(400, f"{where} is missing required field(s): {', '.join(missing)}")
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 256  # the default backlog of 5 drops connections under a concurrent benchmark
    fake: FakeServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        self.server.fake._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeServer:
    """A local HTTP server with latency, queued faults and a request log; subclasses add routes."""

    behaviours: ClassVar[frozenset[str]] = frozenset({*STATUS_FAULTS, "timeout", "drop", "malformed"})

    def __init__(self, *, latency: float = 0.0, timeout_seconds: float = 3.0, port: int = 0) -> None:
        self.latency = latency
        self.timeout_seconds = timeout_seconds
        self.port = port
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.routes: dict[tuple[str, str], Route] = {}
        self._faults: dict[str, deque[str]] = {}
        self._always: dict[str, str] = {}
        self._generation = 0
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None

    # Life cycle

    def start(self) -> FakeServer:
        self._httpd = _Server(("127.0.0.1", self.port), _Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        # A short poll interval keeps stop() quick: shutdown() waits for the loop to notice.
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Faults and state

    def fail(self, path: str, *behaviours: str) -> None:
        """Make the next requests to `path` misbehave, one behaviour per request, in order."""
        for behaviour in behaviours:
            self._check_behaviour(behaviour)
        with self.lock:
            self._faults.setdefault(path, deque()).extend(behaviours)

    def fail_always(self, path: str, behaviour: str) -> None:
        """Make every request to `path` misbehave until `clear_faults()`."""
        self._check_behaviour(behaviour)
        with self.lock:
            self._always[path] = behaviour

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._always.clear()

    def reset(self) -> None:
        """Forget faults and requests; subclasses also clear their data and counters. A request
        still sleeping through a "timeout" from before the reset will change nothing."""
        with self.lock:
            self.clear_faults()
            self.requests.clear()
            self._generation += 1

    def _check_behaviour(self, behaviour: str) -> None:
        if behaviour not in self.behaviours:
            raise ValueError(f"unknown behaviour {behaviour!r}; expected one of {sorted(self.behaviours)}")

    def _next_fault(self, path: str) -> str | None:
        queue = self._faults.get(path)
        if queue:
            return queue.popleft()
        return self._always.get(path)

    # Hooks for subclasses

    def error_body(self, error: HttpError) -> dict[str, Any]:
        """The JSON body of an error answer, in the shape of the API being faked."""
        return {"error": {"message": error.message, "code": error.code}}

    def authorize(self, request: Request) -> None:
        """Raise an HttpError (401) unless the request carries the credentials the API requires."""

    # Serving

    def _serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = None, True
        request: Request = {
            "method": handler.command,
            "path": url.path,
            "query": parse_qs(url.query, keep_blank_values=True),
            "headers": {name.lower(): value for name, value in handler.headers.items()},
            "json": body,
        }
        with self.lock:
            self.requests.append(request)
            fault = self._next_fault(url.path)
            generation = self._generation
        if self.latency:
            time.sleep(self.latency)

        if fault == "drop":
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "malformed":
            self._send(handler, 200, b"<html>oops</html>", "text/html")
            return
        if fault in STATUS_FAULTS:
            status = STATUS_FAULTS[fault]
            error = HttpError(status, STATUS_MESSAGES[status])
            self._send(
                handler,
                status,
                json.dumps(self.error_body(error)).encode(),
                "application/json",
                {"Retry-After": "0", "retry-after-ms": "10"},
            )
            return
        if fault == "timeout":
            time.sleep(self.timeout_seconds)
            fault = None
            if generation != self._generation:
                return  # reset while it slept: it belongs to a test that is over, change nothing

        try:
            if bad_json:
                raise HttpError(400, "the request body is not valid JSON")
            payload, status = self._dispatch(request, fault), 200
        except HttpError as error:
            payload, status = self.error_body(error), error.status
        self._send(handler, status, json.dumps(payload).encode(), "application/json")

    def _dispatch(self, request: Request, fault: str | None) -> Any:
        route = self.routes.get((request["method"], request["path"]))
        if route is None:
            if any(path == request["path"] for _, path in self.routes):
                raise HttpError(405, f"method {request['method']} not allowed on {request['path']}")
            raise HttpError(404, f"no route for {request['method']} {request['path']}")
        self.authorize(request)
        return route(request, fault)

    def _send(
        self, handler: _Handler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:  # the client gave up (e.g. its timeout was shorter than ours)
            handler.close_connection = True


def cli_arguments(description: str) -> argparse.ArgumentParser:
    """The command line shared by the fakes' `python -m` entry points."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    return parser


def serve_until_killed(server: FakeServer) -> None:
    """Serve in this process until it is interrupted or killed, announcing the URL on stdout."""
    server.start()
    print(f"listening on {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
