"""The memory tools of the MCP server (omi_memory/mcp.py builds it): add, get, list and delete
memories, over the services and selectors the API calls, scoped by the same API keys.

Who calls: over streamable HTTP, the key of the request's `Authorization: Bearer <key>`, checked for
each request before it reaches a tool (`authenticate`); over stdio (`manage.py mcp`), the key the
command was given (`STDIO_KEY`), checked at every call, so a key revoked meanwhile stops working. A
key scoped to one uid may name only that uid (and may leave `uid` out). What a caller gets wrong
(input out of the API's bounds, another user's uid or memory, a backend down) is a tool error
(`isError`, the API's error code and message), never a crash. Results: a compact text for the
model to read, and the API's JSON (`MemoryOut`, ...) as structured content.
"""

import contextvars
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from ninja.errors import Throttled
from pydantic import Field, ValidationError

from omi_memory import bounds
from omi_memory.actors import MCP, Actor
from omi_memory.api_common import RowId, check_scope
from omi_memory.errors import ApplicationError, BackendError, Unauthorized
from omi_memory.throttles import ANON, READS, WRITES, RateThrottle, retry_after

from . import selectors, services
from .api import MemoryFilters, MemoryIn, MemoryOut, MemorySummaryOut
from .models import ApiKey, Category, Memory, Source

# The raw key of a stdio server, set by `manage.py mcp` before it serves.
STDIO_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("mcp_stdio_key", default="")
# Where the HTTP transport leaves the key it authenticated, in the request's ASGI scope.
SCOPE_KEY = "omi_memory.api_key"
# A transcript is cut in the text of get_memory (it is whole in the structured content).
TEXT_TRANSCRIPT_CHARS = 4000

Uid = Annotated[
    str | None,
    Field(
        description="The user whose memories these are. A key scoped to one uid may leave it out, and may "
        "name only that uid."
    ),
]
TimeText = Annotated[str | None, Field(description="RFC 3339 with an offset, e.g. 2025-04-02T15:00:00Z")]


def authenticate(raw_key: str, meta: Mapping | None = None) -> ApiKey | None:
    """The active key of this raw key, or None (checked as the API checks `X-API-Key`: a failure
    counts against the address of `meta`, a request's WSGI environ, and past THROTTLE_ANON raises
    `Throttled`); run as a request is: database connections checked before and after (closed when
    past CONN_MAX_AGE or broken, as Django does at a request's start and end)."""
    close_old_connections()
    try:
        key = selectors.api_key_authenticate(raw_key=raw_key)
        if key is None and meta is not None:
            ANON.check(ThrottledCall(auth=None, META=meta))
        return key
    finally:
        close_old_connections()


@dataclass
class ThrottledCall:
    """What the API's throttles read of a request (`omi_memory.throttles`): its key and META, so
    that a tool call counts against the same rates as the key's API requests."""

    auth: ApiKey | None
    META: Mapping


def caller(ctx: Context, throttle: RateThrottle) -> tuple[ApiKey, Actor]:
    """The key this tool call acts with, and the actor the audit trail records; the call counts
    against the key's `throttle` (SEARCH, WRITES or READS, shared with the API), `Throttled` past it."""
    request = ctx.request_context.request
    if request is not None:  # streamable HTTP: authenticated before the request reached the server
        key, meta = request.scope[SCOPE_KEY], request.scope.get("wsgi_environ") or {}
    else:
        key, meta = selectors.api_key_authenticate(raw_key=STDIO_KEY.get()), {}
        if key is None:
            raise Unauthorized("the API key of this server is not valid (unknown, revoked or expired)")
    throttle.check(ThrottledCall(auth=key, META=meta))
    return key, Actor.from_api_key(key, origin=MCP, meta=meta)


def acting_uid(key: ApiKey, uid: str | None, *, required: bool = True) -> str | None:
    """The uid a call acts for: `uid`, which the key must be allowed, or the key's own uid when left
    out. None (every user) only where not `required` and the key is for every user."""
    if uid is not None:
        check_scope(key.uid or None, uid)
    uid = uid or key.uid or None
    if uid is None and required:
        raise ToolError("validation_error: uid is required (this API key may act for every user: name one)")
    return uid


def tool(fn: Callable) -> Callable:
    """A tool's body, run as an API request is (on a worker thread of the SDK's, whose connection a
    later call on it reuses): database connections checked before and after; what the caller got
    wrong is a tool error with the API's error code."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            raise ToolError(f"validation_error: {validation_message(exc)}") from None
        except ApplicationError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None
        except Throttled as exc:
            message = f"throttled: too many requests from this API key; try again in {retry_after(exc)} s"
            raise ToolError(message) from None
        except BackendError:
            raise ToolError(
                "backend_unavailable: a backend service (embedder or vector store) is unavailable; try again later"
            ) from None
        finally:
            close_old_connections()

    return run


def validation_message(exc: ValidationError, most: int = 5) -> str:
    """Each problem as `field: message` (the first `most`)."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}" for error in exc.errors()[:most]
    ]
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def result(text: str, structured: dict) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def memory_line(memory: Memory) -> str:
    """One memory in a line: id, date, category, title, and its status unless indexed."""
    status = "" if memory.status == Memory.Status.INDEXED else f" ({memory.status})"
    title = memory.title or "(untitled)"
    return f"#{memory.id} {memory.created_at:%Y-%m-%d} [{memory.category or '-'}] {title}{status}"


def memory_text(memory: Memory) -> str:
    """A memory for the model to read: its line, overview, action items, events and transcript."""
    lines = [memory_line(memory), f"uid: {memory.uid}  source: {memory.source}"]
    if memory.overview:
        lines.append(memory.overview)
    items = list(memory.action_items.all())
    if items:
        lines.append("Action items:")
        lines += [f"- [{'x' if item.completed else ' '}] {item.description}" for item in items]
    events = list(memory.events.all())
    if events:
        lines.append("Events:")
        lines += [f"- {event.start:%Y-%m-%d %H:%M} {event.title} ({event.duration_minutes} min)" for event in events]
    transcript = memory.transcript
    if len(transcript) > TEXT_TRANSCRIPT_CHARS:
        cut = len(transcript) - TEXT_TRANSCRIPT_CHARS
        transcript = f"{transcript[:TEXT_TRANSCRIPT_CHARS]}… ({cut} more characters in the structured content)"
    lines += ["Transcript:", transcript]
    return "\n".join(lines)


def memory_out(memory: Memory) -> dict:
    return MemoryOut.from_orm(memory).model_dump(mode="json")


@tool
def add_memory(
    ctx: Context,
    transcript: Annotated[
        str | None, Field(description="A conversation, one turn per line: `Speaker: text`. Or give `text`.")
    ] = None,
    text: Annotated[
        str | None, Field(description="Something to remember, in plain words. Or give `transcript`.")
    ] = None,
    uid: Uid = None,
    created_at: Annotated[str | None, Field(description="When it happened (RFC 3339); default: now")] = None,
    source: Source = Source.OMI,
) -> CallToolResult:
    """Store a memory from a transcript (or a plain text): it is structured (title, overview,
    category, action items, events) and indexed so that search_memories finds it."""
    key, _ = caller(ctx, WRITES)
    if (transcript is None) == (text is None):
        raise ToolError("validation_error: give either transcript or text (one of them)")
    payload = MemoryIn(
        uid=acting_uid(key, uid),
        transcript=transcript if transcript is not None else text,
        source=source,
        created_at=created_at,
    )
    memory = services.memory_create(**payload.dict())
    memory = selectors.memory_get(memory_id=memory.id, include_deleted=True)
    state = "indexed: search finds it" if memory.searchable else f"{memory.status}: search finds it once indexed"
    return result(f"Stored memory #{memory.id} for {memory.uid} ({state}).\n{memory_line(memory)}", memory_out(memory))


@tool
def get_memory(ctx: Context, memory_id: RowId, uid: Uid = None) -> CallToolResult:
    """One memory with its structured data (title, overview, action items, events), status and
    transcript."""
    key, _ = caller(ctx, READS)
    memory = selectors.memory_get(memory_id=memory_id, uid=acting_uid(key, uid, required=False))
    return result(memory_text(memory), memory_out(memory))


@tool
def list_memories(
    ctx: Context,
    uid: Uid = None,
    category: Category | None = None,
    starts_at: TimeText = None,
    ends_at: TimeText = None,
    limit: Annotated[int, Field(ge=1, le=bounds.MAX_LIMIT)] = 20,
    offset: Annotated[int, Field(ge=0, le=bounds.MAX_OFFSET)] = 0,
) -> CallToolResult:
    """A user's memories, newest first, optionally of one category and created within dates
    (`starts_at`, `ends_at`); `limit` and `offset` page through them."""
    key, _ = caller(ctx, READS)
    filters = MemoryFilters(
        uid=acting_uid(key, uid, required=False), category=category, starts_at=starts_at, ends_at=ends_at
    )
    memories = selectors.memory_list(**filters.dict()).defer("transcript")
    count = memories.count()
    page = list(memories[offset : offset + limit])
    shown = f"{offset + 1}-{offset + len(page)} of {count}" if page else f"none of {count}"
    text = "\n".join([f"Memories {shown}, newest first:", *(memory_line(m) for m in page)])
    items = [MemorySummaryOut.from_orm(m).model_dump(mode="json") for m in page]
    return result(text, {"items": items, "count": count, "limit": limit, "offset": offset})


@tool
def delete_memory(ctx: Context, memory_id: RowId, uid: Uid = None) -> CallToolResult:
    """Delete a memory and its vectors (recorded in the audit trail)."""
    key, actor = caller(ctx, WRITES)
    memory = selectors.memory_get(memory_id=memory_id, uid=acting_uid(key, uid, required=False))
    services.memory_delete(memory=memory, actor=actor)
    deleted = {"id": memory.id, "uid": memory.uid, "deleted": True}
    return result(f"Deleted memory #{memory.id} of {memory.uid}.", deleted)


def register(server: MCPServer) -> None:
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(add_memory, annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    server.add_tool(get_memory, annotations=read_only)
    server.add_tool(list_memories, annotations=read_only)
    destructive = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
    server.add_tool(delete_memory, annotations=destructive)
