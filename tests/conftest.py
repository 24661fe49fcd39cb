import json

import pytest
from django.test import Client

from memories.models import Memory
from memories.services import api_key_create, memory_create
from search.embedders import get_embedder


class Api:
    """A JSON client for /api/v1 that sends one API key (or none)."""

    def __init__(self, raw_key: str | None):
        self.client = Client(headers={"X-API-Key": raw_key} if raw_key else {})

    def post(self, path: str, body=None, *, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(f"/api/v1{path}", data, content_type="application/json")

    def get(self, path: str, **params):
        return self.client.get(f"/api/v1{path}", params)

    def delete(self, path: str):
        return self.client.delete(f"/api/v1{path}")


@pytest.fixture
def api(transactional_db) -> Api:
    """A client whose key may act for every user."""
    return Api(api_key_create(name="all users")[1])


@pytest.fixture
def api_for(transactional_db):
    """A client whose key is scoped to one uid."""
    return lambda uid: Api(api_key_create(name=f"key for {uid}", uid=uid)[1])


@pytest.fixture
def remember(transactional_db):
    """Store a memory through the services; in-process, it is indexed on return."""

    def make(uid: str, transcript: str, **fields) -> Memory:
        memory = memory_create(uid=uid, transcript=transcript, **fields)
        memory.refresh_from_db()
        return memory

    return make


@pytest.fixture(autouse=True)
def _fresh_embedding_cache():
    get_embedder().clear_cache()
