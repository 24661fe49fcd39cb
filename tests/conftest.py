import importlib
import json
import socket
from contextlib import contextmanager

import pytest

from memories.parts.embedders import Embedder
from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.memories import indexed_memory
from tests.support.transactions import CommittingClient


class Api:
    """A JSON client for /api/v1 that sends one API key (or none); what a call leaves to run on
    commit (the pipeline, in-process) has run when it returns (tests/support/transactions.py)."""

    def __init__(self, raw_key: str | None):
        self.client = CommittingClient(headers={"X-API-Key": raw_key} if raw_key else {})

    def post(self, path: str, body=None, *, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(f"/api/v1{path}", data, content_type="application/json")

    def patch(self, path: str, body: dict):
        return self.client.patch(f"/api/v1{path}", json.dumps(body), content_type="application/json")

    def get(self, path: str, **params):
        return self.client.get(f"/api/v1{path}", params)

    def delete(self, path: str):
        return self.client.delete(f"/api/v1{path}")


@pytest.fixture
def api(db) -> Api:
    """A client whose key may act for every user."""
    return Api(api_key_create(name="all users", actor=Actor.command())[1])


@pytest.fixture
def api_admin(db) -> Api:
    """A client whose key has the admin scope (every user, and what only admins may do)."""
    return Api(api_key_create(name="admin", admin=True, actor=Actor.command())[1])


@pytest.fixture
def api_for(db):
    """A client whose key is scoped to one uid."""
    return lambda uid: Api(api_key_create(name=f"key for {uid}", uid=uid, actor=Actor.command())[1])


@pytest.fixture
def remember(db):
    """Store a memory through the services; in-process, it is indexed on return."""
    return indexed_memory


@pytest.fixture
def dns(monkeypatch):
    """`dns["hooks.example.net"] = ["93.184.215.14"]`: what a name resolves to (the resolver the
    webhooks use is the process's; names not set here resolve as usual)."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def signed_in(db):
    """A browser-like client signed in as a member of `group` ("admin", "analyst" or None)."""
    from django.contrib.auth.models import Group, User

    def make(group: str | None, *, username: str | None = None, csrf_checks: bool = False) -> CommittingClient:
        user = User.objects.create_user(username or group or "nobody", password="pw")
        if group:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        client = CommittingClient(enforce_csrf_checks=csrf_checks)
        client.force_login(user)
        client.user = user
        return client

    return make


def forget_process_state() -> None:
    """No vector cached in this process, for any model, and parts built anew (a store remembers
    its model record for a few seconds: a record from rows since rolled back must not count); no
    request counted by a throttle in this process's cache (a Redis cache is never flushed here); no
    broker or cache remembered as down; no parameter profile or experiment remembered; no snapshot of
    the local store on disk (of rows since rolled back)."""
    import shutil

    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    from memories import selectors
    from memories.parts import registry, versions
    from memories.parts.vectorstores import snapshots
    from omi_memory import recently, throttles
    from omi_memory.breaker import BROKER

    Embedder._caches.clear()
    selectors._matrices = None
    selectors._checkpoints.clear()
    registry._forget_parts()
    versions._forget_parts()
    BROKER.reset()
    throttles._CACHE.reset()
    recently.forget()
    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()
    shutil.rmtree(snapshots.database_dir(), ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Every test starts from a fresh process state."""
    forget_process_state()


@pytest.fixture(scope="session", autouse=True)
def _flush_as_the_database_owner():
    """After a transactional test Django empties every table. PostgreSQL truncates them, which the
    audit trail's row triggers do not see; SQLite deletes the rows, which they refuse. There the
    flush does what the test database's owner may: drop the triggers, delete, make them again."""
    from django.db.backends.sqlite3.base import DatabaseOperations

    migration = importlib.import_module("memories.migrations.0006_api_key_lifecycle_audit_trail")
    create, drop = migration.TRIGGERS["sqlite"]
    sql_flush = DatabaseOperations.sql_flush

    def flush_with_the_triggers_lifted(self, style, tables, **kwargs):
        statements = sql_flush(self, style, tables, **kwargs)
        return [*drop, *statements, *create] if migration.TABLE in tables else statements

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", flush_with_the_triggers_lifted)
        yield


@pytest.fixture(scope="session")
def shared_rows(django_db_setup, django_db_blocker):
    """`with shared_rows():` in a class- or module-scoped fixture: the rows it makes are made once,
    from a fresh process state, and seen by each test of its scope (tests/support/transactions.py)."""
    from tests.support import transactions

    @contextmanager
    def rows():
        forget_process_state()
        with transactions.shared_rows(django_db_blocker):
            yield

    return rows


# Production parts, met by local fakes of OpenAI and Pinecone driven through the real SDKs.

DIMENSIONS = 64


@pytest.fixture(scope="session")
def openai_server():
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI(timeout_seconds=2.0) as server:
        yield server


@pytest.fixture(scope="session")
def pinecone_server():
    from tests.support.fake_pinecone import FakePinecone

    with FakePinecone(dimension=DIMENSIONS, timeout_seconds=2.0) as server:
        yield server


@pytest.fixture
def fake_openai(openai_server, settings, monkeypatch):
    from openai._base_client import SyncAPIClient

    from tests.support.fake_openai import default_responder

    # The SDK's back-off sleeps between its retries are skipped (it still retries, as often).
    monkeypatch.setattr(SyncAPIClient, "_sleep_for_retry", lambda self, **kwargs: None)

    openai_server.reset()
    openai_server.latency = 0.0
    openai_server.responder = default_responder
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = f"{openai_server.url}/v1"
    settings.OPENAI_EMBEDDING_DIMENSIONS = DIMENSIONS
    settings.OPENAI_TIMEOUT = 1.0
    settings.OPENAI_MAX_RETRIES = 1
    yield openai_server
    openai_server.reset()


@pytest.fixture
def fake_pinecone(pinecone_server, settings, monkeypatch):
    from pinecone._internal import http_client

    # The SDK keeps a process-wide retry budget per host (it stops retrying after many failures);
    # each test starts with a full one, and the SDK's backoff sleeps are skipped (its test seam).
    monkeypatch.setattr(http_client, "_budget_registry", http_client._BudgetRegistry())
    monkeypatch.setattr(http_client, "_retry_sleep", lambda seconds: None)
    pinecone_server.reset()
    pinecone_server.latency = 0.0
    settings.PINECONE_API_KEY = "pc-test"
    settings.PINECONE_HOST = pinecone_server.url
    settings.PINECONE_TIMEOUT = 1.0
    yield pinecone_server
    pinecone_server.reset()


@pytest.fixture
def pipeline_retries(monkeypatch):
    """Set how many times the pipeline's tasks retry a transient failure (PIPELINE_MAX_RETRIES,
    which a worker reads when it starts)."""
    from memories.tasks import process_memories, process_memory

    def set_retries(retries: int) -> None:
        for task in (process_memory, process_memories):
            monkeypatch.setattr(task, "max_retries", retries)

    return set_retries


@pytest.fixture
def production_parts(settings, fake_openai, fake_pinecone, pipeline_retries, db):
    """EXTRACTOR=openai, EMBEDDER=openai, VECTOR_STORE=pinecone, against the fakes."""
    settings.EXTRACTOR = "openai"
    settings.EMBEDDER = "openai"
    settings.VECTOR_STORE = "pinecone"
    pipeline_retries(2)
    return fake_openai, fake_pinecone
