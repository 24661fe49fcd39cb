"""The MCP server (Model Context Protocol, on the official `mcp` SDK): the tools of memories/mcp.py
(add, get, list, delete) and search/mcp.py (search), over two transports.

- Streamable HTTP under `/mcp`, served by the site's own gunicorn: omi_memory/wsgi.py hands `/mcp`
  to `wsgi_app`, which runs the SDK's ASGI app on an event loop of its own in each web worker
  process (a2wsgi bridges a WSGI request to it), so Django stays a WSGI app as it was. Stateless,
  with JSON answers: no session is kept in a process, so any worker of any host answers any request.
  Every request names an API key in `Authorization: Bearer <key>` (else 401 in the API's error
  shape) and a `Host` that ALLOWED_HOSTS accepts (else 400), as Django would ask.
- stdio: `python manage.py mcp` (search/management/commands/mcp.py), with the key it is given.

This module composes the two apps' tools (as omi_memory/api.py mounts their routers).
"""

import asyncio
import threading

import anyio.to_thread
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from ninja.errors import Throttled
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from memories import mcp as memory_tools
from omi_memory.errors import error_body
from omi_memory.throttles import retry_after
from search import mcp as search_tools

PATH = "/mcp"
INSTRUCTIONS = (
    "A memory store of conversations. search_memories finds a user's memories by meaning and words "
    "(with dates and categories); add_memory stores a transcript or a note; get_memory, list_memories "
    "and delete_memory read and remove them. Each tool takes `uid`, which a key scoped to one user may "
    "leave out."
)


def build_server() -> MCPServer:
    server = MCPServer("omi-memory", instructions=INSTRUCTIONS, version="1", log_level="WARNING")
    memory_tools.register(server)
    search_tools.register(server)
    return server


def run_stdio(raw_key: str) -> None:
    """Serve MCP on this process's stdin and stdout, acting with `raw_key` (checked at every call)."""
    memory_tools.STDIO_KEY.set(raw_key)
    build_server().run("stdio")


class BearerKeyAuth:
    """ASGI: a request reaches the MCP app only with a `Host` that ALLOWED_HOSTS accepts and an
    active API key in `Authorization: Bearer <key>`, which it leaves in the scope for the tools."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        domain, _ = split_domain_port(headers.get("host", ""))
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            message = "the Host header is not one of ALLOWED_HOSTS"
            return await JSONResponse(error_body("bad_request", message), status_code=400)(scope, receive, send)
        scheme, _, raw_key = headers.get("authorization", "").partition(" ")
        raw_key = raw_key.strip() if scheme.lower() == "bearer" else ""
        try:
            key = await anyio.to_thread.run_sync(memory_tools.authenticate, raw_key, scope.get("wsgi_environ") or {})
        except Throttled as exc:
            seconds = retry_after(exc)
            message = f"too many requests from this address without a valid API key; try again in {seconds} s"
            body = error_body("throttled", message, {"retry_after": seconds})
            response = JSONResponse(body, status_code=429, headers={"Retry-After": str(seconds)})
            return await response(scope, receive, send)
        if key is None:
            message = "a valid API key is required in the Authorization header: Bearer <key>"
            response = JSONResponse(
                error_body("unauthorized", message), status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            return await response(scope, receive, send)
        scope[memory_tools.SCOPE_KEY] = key
        await self.app(scope, receive, send)


def http_app(server: MCPServer):
    """The streamable HTTP app at PATH, behind BearerKeyAuth (the Host check is ours: the SDK's would
    know only 127.0.0.1 and localhost)."""
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    )
    return BearerKeyAuth(app)


class WsgiBridge:
    """A WSGI app serving the MCP HTTP app: started on the first request of each process (after
    gunicorn forked it), on an event loop in a thread of its own that runs the SDK's session manager
    (its task group) for as long as the process."""

    def __init__(self):
        self._app = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._start()
        return self._app(environ, start_response)

    @staticmethod
    def _start():
        from a2wsgi import ASGIMiddleware

        server = build_server()
        app = http_app(server)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="mcp-event-loop", daemon=True).start()
        started = threading.Event()

        async def serve() -> None:
            async with server.session_manager.run():
                started.set()
                await asyncio.Event().wait()  # as long as the process

        running = asyncio.run_coroutine_threadsafe(serve(), loop)
        started.wait(timeout=30)
        if running.done():
            running.result()  # raises what stopped it
        if not started.is_set():
            raise RuntimeError("the MCP server's session manager did not start within 30 s")
        return ASGIMiddleware(app, loop=loop)


wsgi_app = WsgiBridge()
