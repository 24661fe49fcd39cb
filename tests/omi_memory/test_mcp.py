"""The MCP server through the SDK's own client, over both transports: stdio (`manage.py mcp` run as
a subprocess) and streamable HTTP (gunicorn serving the site, /mcp included, on 127.0.0.1), each on
the test database with tasks in-process, so a memory added is indexed by the real pipeline before
add_memory answers. Rows are committed (other processes read them) and flushed after each test."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from django.db import connections
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from memories.models import AuditEvent, Memory
from memories.services import api_key_create, api_key_revoke
from tests.support.actors import COMMAND
from tests.support.processes import ROOT, database_url_for_subprocess, web_server
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = {"search_memories", "add_memory", "get_memory", "list_memories", "delete_memory"}


def server_env() -> dict:
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "TORCH_THREADS": "1"}
    for name in ("REDIS_URL", "EMBEDDING_CACHE_URL", "CACHE_URL", "OMI_API_KEY"):
        env.pop(name, None)  # tasks in the server's process; nothing shared
    return env


ANON_RATE = 5  # requests without a valid key, per address and minute, of the HTTP server


@pytest.fixture(scope="module")
def http_base(django_db_setup, tmp_path_factory):
    env = {**server_env(), "THROTTLE_ANON": f"{ANON_RATE}/min"}
    with web_server(env, tmp_path_factory.mktemp("mcp-http") / "web.log") as base:
        yield base


@asynccontextmanager
async def over_http(base: str, key: str):
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_stdio(key: str, errlog, **env):
    env = {**server_env(), "OMI_API_KEY": key, **env}
    params = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp"], env=env, cwd=str(ROOT))
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@pytest.fixture(params=["stdio", "http"])
def connect(request, tmp_path):
    """`connect(key)`: an initialized client session of the SDK with that key, over the transport."""
    if request.param == "http":
        base = request.getfixturevalue("http_base")
        return lambda key: over_http(base, key)

    @asynccontextmanager
    async def stdio(key: str):
        with open(tmp_path / "stdio-server.log", "a") as errlog:
            async with over_stdio(key, errlog) as session:
                yield session

    return stdio


def key_for(uid: str = "") -> str:
    return api_key_create(name=f"mcp {uid or 'all users'}", uid=uid, actor=COMMAND)[1]


def text(result) -> str:
    return "\n".join(block.text for block in result.content)


def run(scenario):
    """`anyio.run(scenario)` on a thread of its own: the browser tests' Playwright keeps an event
    loop running on the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(anyio.run, scenario).result()


def test_a_scoped_key_adds_finds_reads_lists_and_deletes_its_memories(connect):
    key = key_for("alice")

    async def scenario():
        async with connect(key) as mcp:
            assert {tool.name for tool in (await mcp.list_tools()).tools} == TOOLS
            added = await mcp.call_tool("add_memory", {"transcript": DENTIST, "created_at": "2026-02-03T10:00:00Z"})
            note = await mcp.call_tool("add_memory", {"text": "Alice's bike needs a new chain before the race."})
            memory_id = added.structured_content["id"]

            found = await mcp.call_tool("search_memories", {"query": "what did the dentist say about my crown"})
            got = await mcp.call_tool("get_memory", {"memory_id": memory_id})
            listed = await mcp.call_tool("list_memories", {"ends_at": "2026-03-01T00:00:00Z"})
            deleted = await mcp.call_tool("delete_memory", {"memory_id": memory_id})
            after = await mcp.call_tool("search_memories", {"query": "what did the dentist say about my crown"})
            gone = await mcp.call_tool("get_memory", {"memory_id": memory_id})
            return added, note, found, got, listed, deleted, after, gone

    added, note, found, got, listed, deleted, after, gone = run(scenario)

    assert not added.is_error, text(added)
    memory_id = added.structured_content["id"]
    assert added.structured_content["uid"] == "alice" and added.structured_content["status"] == "indexed"
    assert f"Stored memory #{memory_id} for alice" in text(added)
    assert not note.is_error and note.structured_content["uid"] == "alice"

    hits = found.structured_content["results"]
    assert hits[0]["memory"]["id"] == memory_id and hits[0]["memory"]["category"] == "health"
    assert f"1. #{memory_id} " in text(found) and "crown" in text(found).lower()

    assert got.structured_content["transcript"] == DENTIST and got.structured_content["action_items"]
    assert "Action items:" in text(got) and "Dr. Patel" in text(got)

    assert [m["id"] for m in listed.structured_content["items"]] == [memory_id]  # the note is dated now
    assert listed.structured_content["count"] == 1

    assert not deleted.is_error and deleted.structured_content == {"id": memory_id, "uid": "alice", "deleted": True}
    assert memory_id not in [h["memory"]["id"] for h in after.structured_content["results"]]
    assert gone.is_error and f"memory {memory_id} not found" in text(gone)
    assert Memory.objects.get(id=memory_id).status == Memory.Status.DELETED
    audit = AuditEvent.objects.get(action=AuditEvent.Action.MEMORY_DELETE)
    assert audit.origin == "mcp" and audit.actor_type == "api_key" and audit.target_ids == [memory_id]


def test_a_scoped_key_is_refused_another_uid_with_a_tool_error(connect):
    alice, every_user = key_for("alice"), key_for()

    async def scenario():
        async with connect(every_user) as mcp:
            bens = await mcp.call_tool("add_memory", {"uid": "ben", "transcript": BUDGET})
        async with connect(alice) as mcp:
            ben_id = bens.structured_content["id"]
            refused = {
                "search": await mcp.call_tool("search_memories", {"uid": "ben", "query": "mortgage budget"}),
                "add": await mcp.call_tool("add_memory", {"uid": "ben", "text": "Ben owes Alice twenty dollars."}),
                "list": await mcp.call_tool("list_memories", {"uid": "ben"}),
                "get": await mcp.call_tool("get_memory", {"memory_id": ben_id}),
                "delete": await mcp.call_tool("delete_memory", {"memory_id": ben_id}),
            }
            return bens, refused

    bens, refused = run(scenario)

    assert not bens.is_error, text(bens)
    for name in ("search", "add", "list"):
        assert refused[name].is_error, name
        assert "uid_forbidden: this API key may only act for uid 'alice'" in text(refused[name])
    for name in ("get", "delete"):  # another user's memory id is not found, as in the API
        assert refused[name].is_error and f"memory {bens.structured_content['id']} not found" in text(refused[name])
    assert list(Memory.objects.values_list("uid", "status")) == [("ben", "indexed")]


def test_input_out_of_the_apis_bounds_is_a_tool_error(connect):
    key = key_for()

    async def scenario():
        async with connect(key) as mcp:
            return {
                "no uid": await mcp.call_tool("search_memories", {"query": "dentist"}),
                "k": await mcp.call_tool("search_memories", {"uid": "alice", "query": "dentist", "k": 0}),
                "dates": await mcp.call_tool(
                    "search_memories",
                    {
                        "uid": "alice",
                        "query": "dentist",
                        "starts_at": "2026-03-01T00:00:00Z",
                        "ends_at": "2026-02-01T00:00:00Z",
                    },
                ),
                "naive time": await mcp.call_tool("list_memories", {"starts_at": "2026-03-01T00:00:00"}),
                "both": await mcp.call_tool("add_memory", {"uid": "alice", "transcript": DENTIST, "text": "x"}),
                "blank": await mcp.call_tool("add_memory", {"uid": "alice", "text": "   "}),
                "uid": await mcp.call_tool("add_memory", {"uid": "not a uid!", "text": "hello there"}),
            }

    answers = run(scenario)

    assert all(answer.is_error for answer in answers.values()), {n: text(a) for n, a in answers.items()}
    assert "uid is required" in text(answers["no uid"])
    assert "k\n  Input should be greater than or equal to 1" in text(answers["k"])  # the SDK's own check
    assert "ends_at is before starts_at" in text(answers["dates"])
    assert "validation_error: starts_at" in text(answers["naive time"])
    assert "give either transcript or text" in text(answers["both"])
    assert "validation_error: transcript" in text(answers["blank"])
    assert "validation_error: uid" in text(answers["uid"])
    assert not Memory.objects.exists()


def test_http_refuses_a_request_without_a_valid_key(http_base):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    revoked, raw = api_key_create(name="revoked", actor=COMMAND)
    api_key_revoke(key=revoked, actor=COMMAND)

    answers = [
        httpx2.post(f"{http_base}/mcp", json=body, headers={**headers, **auth}, timeout=30)
        for auth in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Bearer {raw}"})
    ]
    stranger = httpx2.post(
        f"{http_base}/mcp",
        json=body,
        headers={**headers, "Authorization": f"Bearer {key_for()}", "Host": "evil.example"},
    )

    for answer in answers:
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert stranger.status_code == 400 and stranger.json()["error"]["code"] == "bad_request"
    # Counted in /metrics as the site's own requests are (the MCP server is not served by Django)
    scraped = httpx2.get(f"{http_base}/metrics", timeout=30).text
    refused = re.search(r'omi_http_requests_total\{endpoint="/mcp",method="POST",status="401"\} (\S+)', scraped)
    assert refused and float(refused.group(1)) >= 3, scraped[-2000:]
    assert 'omi_http_request_duration_seconds_count{endpoint="/mcp",method="POST"}' in scraped


def test_stdio_checks_its_key_at_every_call_and_refuses_to_start_without_one(tmp_path):
    key = api_key_create(name="stdio", uid="alice", actor=COMMAND)

    def revoke():  # on a thread of its own, with a connection of its own
        try:
            api_key_revoke(key=key[0], actor=COMMAND)
        finally:
            connections.close_all()

    async def scenario():
        with open(tmp_path / "stdio.log", "w") as errlog:
            async with over_stdio(key[1], errlog) as mcp:
                before = await mcp.call_tool("list_memories", {})
                await anyio.to_thread.run_sync(revoke)
                after = await mcp.call_tool("list_memories", {})
                return before, after

    before, after = run(scenario)
    no_key = subprocess.run(
        [sys.executable, "manage.py", "mcp"], cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=120
    )
    revoked = subprocess.run(
        [sys.executable, "manage.py", "mcp", "--api-key", key[1]],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert not before.is_error and before.structured_content["count"] == 0
    assert after.is_error and "unauthorized" in text(after)
    assert no_key.returncode != 0 and "an API key is required" in no_key.stderr
    assert revoked.returncode != 0 and "not valid" in revoked.stderr


def test_tool_calls_count_against_the_keys_api_rates(tmp_path):
    key = key_for("alice")

    async def scenario():
        with open(tmp_path / "stdio.log", "w") as errlog:
            async with over_stdio(key, errlog, THROTTLE_READS="2/min") as mcp:
                return [await mcp.call_tool("list_memories", {}) for _ in range(3)]

    answers = run(scenario)

    assert [answer.is_error for answer in answers] == [False, False, True]
    assert "throttled: too many requests from this API key; try again in" in text(answers[2])
