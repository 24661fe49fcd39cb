"""MCP against the REST API: the latency of one search and of one memory read through the API
(`POST /api/v1/search`, `GET /api/v1/memories/{id}`), the MCP tools over streamable HTTP (`/mcp` of
the same gunicorn, through the WSGI-to-ASGI bridge) and over stdio (`manage.py mcp`).

    .venv/bin/python bench/mcp_latency.py [--calls 50] [--database-url URL]

Uses the demo memories (loaded through the real pipeline when the database has none), a key for
every user, one gunicorn worker with tasks in-process, and one client at a time: what a call costs,
not throughput. Each client (an HTTP connection, an MCP session) is opened once and warmed by one
call before it is timed. (Not named mcp.py: run as a script, bench/ comes first on sys.path and
that name would hide the SDK.)
"""

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import sys
import time

import anyio
from common import ROOT, database_label, machine, percentiles, setup_django, start_web

QUESTIONS = [
    ("alice", "what did the dentist say"),
    ("ben", "how much was the car repair"),
    ("carmen", "when is the sprint demo"),
    ("dmitri", "what time is the recital"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(call, calls: int) -> list[float]:
    call(0)  # warm: the model loaded, the connection open
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def timed_async(call, calls: int) -> list[float]:
    await call(0)
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def api_figures(port: int, key: str, memory_ids: list[int], calls: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def ask(method: str, path: str, body: dict | None = None) -> None:
        connection.request(method, path, json.dumps(body) if body else None, headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status

    def search(i: int) -> None:
        uid, query = QUESTIONS[i % len(QUESTIONS)]
        ask("POST", "/api/v1/search", {"uid": uid, "query": query, "k": 5})

    def read(i: int) -> None:
        ask("GET", f"/api/v1/memories/{memory_ids[i % len(memory_ids)]}")

    return {"search": timed(search, calls), "get memory": timed(read, calls)}


async def mcp_figures(session, memory_ids: list[int], calls: int) -> dict:
    async def call(name: str, arguments: dict) -> None:
        result = await session.call_tool(name, arguments)
        assert not result.is_error, result.content

    async def search(i: int) -> None:
        uid, query = QUESTIONS[i % len(QUESTIONS)]
        await call("search_memories", {"uid": uid, "query": query, "k": 5})

    async def read(i: int) -> None:
        await call("get_memory", {"memory_id": memory_ids[i % len(memory_ids)]})

    return {"search": await timed_async(search, calls), "get memory": await timed_async(read, calls)}


async def over_http(port: int, key: str, memory_ids: list[int], calls: int) -> dict:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as client,
        streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await mcp_figures(session, memory_ids, calls)


async def over_stdio(key: str, memory_ids: list[int], calls: int) -> dict:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {**os.environ, "OMI_API_KEY": key, "LOG_LEVEL": "WARNING"}
    params = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp"], env=env, cwd=str(ROOT))
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await mcp_figures(session, memory_ids, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="timed calls of each kind per client")
    parser.add_argument("--database-url")
    args = parser.parse_args()

    database_url = setup_django(args.database_url)
    from django.core.management import call_command

    from memories.models import Memory
    from memories.services import api_key_create
    from omi_memory.actors import Actor

    if not Memory.objects.filter(status=Memory.Status.INDEXED).exists():
        call_command("load_demo")
    memory_ids = list(Memory.objects.filter(status=Memory.Status.INDEXED).values_list("id", flat=True)[:20])
    key = api_key_create(name="bench mcp_latency", actor=Actor.command())[1]

    port = free_port()
    server = start_web(port, threads=4)
    try:
        figures = {
            "REST API": api_figures(port, key, memory_ids, args.calls),
            "MCP, streamable HTTP": anyio.run(over_http, port, key, memory_ids, args.calls),
            "MCP, stdio": anyio.run(over_stdio, key, memory_ids, args.calls),
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print(f"{machine()}; {database_label(database_url)}; one client at a time, {args.calls} calls of each")
    print(f"{'client':<22} {'call':<11} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for (client, by_call), call in itertools.product(figures.items(), ("search", "get memory")):
        p = percentiles(by_call[call])
        print(f"{client:<22} {call:<11} {p['p50']:>8.1f} {p['p95']:>8.1f} {p['mean']:>8.1f}")


if __name__ == "__main__":
    main()
