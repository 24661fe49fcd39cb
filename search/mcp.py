"""The search tool of the MCP server (omi_memory/mcp.py builds it; memories/mcp.py has the rest and
says who may call what): the API's search, with its bounds, logged as the API's searches are."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from memories.mcp import TimeText, Uid, acting_uid, caller, memory_line, result, tool
from memories.models import Category
from omi_memory.throttles import SEARCH

from .api import SearchIn, SearchOut, search_run
from .strategies import DEFAULT_STRATEGY, MAX_K, MAX_QUERY_CHARS, STRATEGIES

Strategy = Annotated[
    Literal[STRATEGIES],  # type: ignore[valid-type]
    Field(description="hybrid (words and meaning), semantic (meaning), time_weighted (meaning, recent first)"),
]


@tool
def search_memories(
    ctx: Context,
    query: Annotated[str, Field(description="What to look for, in words.", max_length=MAX_QUERY_CHARS)],
    uid: Uid = None,
    k: Annotated[int, Field(description="How many memories to return.", ge=1, le=MAX_K)] = 5,
    starts_at: TimeText = None,
    ends_at: TimeText = None,
    categories: Annotated[list[Category] | None, Field(description="Only memories of these categories.")] = None,
    strategy: Strategy = DEFAULT_STRATEGY,
) -> CallToolResult:
    """Search a user's memories by meaning and words; optionally only those created within dates
    (`starts_at`, `ends_at`) or of some categories. Best first, each with a score on 0..1 and the
    passage that matched; `weak` marks results that resemble the query in nothing."""
    key, _ = caller(ctx, SEARCH)
    payload = SearchIn(
        uid=acting_uid(key, uid),
        query=query,
        k=k,
        starts_at=starts_at,
        ends_at=ends_at,
        categories=categories or [],
        strategy=strategy,
    )
    found = search_run(payload, api_key=key)
    lines = [f"{len(found['results'])} memories of {payload.uid} for {query!r}, best first:"]
    for rank, hit in enumerate(found["results"], 1):
        weak = ", weak: nothing in it resembles the query" if hit["weak"] else ""
        snippet = " / ".join(line.strip() for line in hit["snippet"].splitlines() if line.strip())
        lines += [f"{rank}. {memory_line(hit['memory'])} (score {hit['score']:.2f}{weak})", f"   {snippet}"]
    return result("\n".join(lines), SearchOut.model_validate(found).model_dump(mode="json"))


def register(server: MCPServer) -> None:
    server.add_tool(search_memories, annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
