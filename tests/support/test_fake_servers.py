"""The fake OpenAI and Pinecone servers, driven through the real `openai` and `pinecone` SDKs."""

import base64
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pinecone
import pydantic
import pytest
from pinecone.errors.exceptions import (
    ApiError,
    PineconeConnectionError,
    PineconeTimeoutError,
    RateLimitError,
    ResponseParsingError,
    ServiceError,
    UnauthorizedError,
)

from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_pinecone import FakePinecone
from tests.support.transcripts import DENTIST, STANDUP

ROOT = Path(__file__).resolve().parents[2]


class ActionItem(pydantic.BaseModel):
    description: str
    due_at: str | None


class Extraction(pydantic.BaseModel):
    title: str
    overview: str
    emoji: str
    category: str
    action_items: list[ActionItem]
    events: list[str]


@pytest.fixture
def oai():
    with FakeOpenAI(timeout_seconds=1.0) as server:
        yield server


@pytest.fixture
def client(oai) -> openai.OpenAI:
    return openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=0, timeout=2)


@pytest.fixture
def pc():
    with FakePinecone(dimension=4, timeout_seconds=0.5) as server:
        yield server


@pytest.fixture
def index(pc) -> pinecone.Index:
    return pinecone.Index(host=pc.url, api_key="test", timeout=2)


@pytest.fixture
def no_backoff(monkeypatch):
    """The pinecone SDK retries 429, 5xx and connection errors itself; skip its back-off sleeps."""
    monkeypatch.setattr("pinecone._internal.http_client._retry_sleep", lambda seconds: None)


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def extract(client: openai.OpenAI, text: str = DENTIST):
    return client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Extract."}, {"role": "user", "content": text}],
        response_format=Extraction,
        temperature=0,
    )


# OpenAI: embeddings


def test_embeddings_come_back_the_same_in_every_encoding(oai, client):
    text = "the dentist said my crown is cracked"
    as_floats = client.embeddings.create(model="text-embedding-3-small", input=text, encoding_format="float")
    as_base64 = client.embeddings.create(model="text-embedding-3-small", input=text, encoding_format="base64")
    by_default = client.embeddings.create(model="text-embedding-3-small", input=[text])

    floats = np.array(as_floats.data[0].embedding, dtype=np.float32)
    assert floats.shape == (1536,) and np.linalg.norm(floats) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(np.frombuffer(base64.b64decode(as_base64.data[0].embedding), dtype="<f4"), floats)
    assert np.array_equal(np.array(by_default.data[0].embedding, dtype=np.float32), floats)
    assert oai.requests[2]["json"]["encoding_format"] == "base64"  # the SDK's default, decoded for you
    assert as_floats.model == "text-embedding-3-small" and as_floats.usage.prompt_tokens == 9


def test_embedding_sizes_follow_the_model_and_dimensions(client):
    large = client.embeddings.create(model="text-embedding-3-large", input="a", encoding_format="float")
    small = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=256)

    assert len(large.data[0].embedding) == 3072
    assert [(d.index, len(d.embedding)) for d in small.data] == [(0, 256), (1, 256)]


def test_texts_sharing_words_are_closer_than_unrelated_ones(client):
    texts = [
        "the dentist said my crown is cracked",
        "my dentist says the crown cracked again",
        "the sprint demo is on friday morning",
    ]
    a, b, c = (d.embedding for d in client.embeddings.create(model="text-embedding-3-small", input=texts).data)

    assert cosine(a, b) > 0.3 > cosine(a, c)


def test_embedding_requests_are_checked_and_counted(oai, client):
    client.embeddings.create(model="m", input=["one", "two", "three"])

    with pytest.raises(openai.BadRequestError, match="at most 2048"):
        client.embeddings.create(model="m", input=["x"] * 2049)
    with pytest.raises(openai.BadRequestError, match="maximum context length is 8192 tokens"):
        client.embeddings.create(model="m", input="word " * 7000)
    with pytest.raises(openai.BadRequestError, match="unknown field"):
        client.embeddings.create(model="m", input="x", extra_body={"truncate": True})
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="m", input="x", extra_headers={"Authorization": "Token test"})

    assert (oai.embedding_requests, oai.embedded_inputs) == (1, 3)
    assert oai.requests[0]["headers"]["authorization"] == "Bearer test"


def test_wrong_count_returns_one_embedding_fewer(oai, client):
    oai.fail("/v1/embeddings", "wrong_count")

    response = client.embeddings.create(model="m", input=["a", "b", "c"])

    assert len(response.data) == 2  # the SDK does not check the count: callers must


# OpenAI: chat completions


def test_chat_parse_returns_a_parsed_extraction(oai, client):
    completion = extract(client)

    message = completion.choices[0].message
    assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
    assert message.parsed.category == "health" and message.parsed.emoji == "🧠"
    assert message.parsed.title == "Alice: So the dentist said my"
    assert [item.description for item in message.parsed.action_items] == ["Book a replacement"]
    assert extract(client, STANDUP).choices[0].message.parsed.category == "work"
    assert set(oai.requests[0]["json"]) == {"model", "stream", "messages", "response_format", "temperature"}
    assert oai.requests[0]["json"]["response_format"]["json_schema"]["strict"] is True
    assert oai.chat_requests == 2


def test_the_responder_is_pluggable(oai, client):
    oai.responder = lambda request: {
        "title": request["model"],
        "overview": "o",
        "emoji": "x",
        "category": "other",
        "action_items": [],
        "events": ["e"],
    }

    assert extract(client).choices[0].message.parsed.title == "gpt-4o-mini"


def test_chat_requests_with_a_wrong_shape_get_a_400(client):
    with pytest.raises(openai.BadRequestError, match="json_schema"):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], response_format={"type": "json_object"}
        )
    with pytest.raises(openai.BadRequestError, match="unknown field"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], top_p=0.5)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="m", messages=[])


@pytest.mark.parametrize(
    "behaviour, error",
    [
        ("invalid_json", pydantic.ValidationError),
        ("schema_mismatch", pydantic.ValidationError),
        ("length", openai.LengthFinishReasonError),
        ("content_filter", openai.ContentFilterFinishReasonError),
    ],
)
def test_chat_faults_surface_as_parse_errors(oai, client, behaviour, error):
    oai.fail("/v1/chat/completions", behaviour)

    with pytest.raises(error):
        extract(client)


def test_a_refusal_has_no_parsed_object(oai, client):
    oai.fail("/v1/chat/completions", "refusal")

    message = extract(client).choices[0].message

    assert (message.parsed, message.content, message.refusal) == (None, None, "I can't help with that.")


# OpenAI: transport faults, retries, latency


@pytest.mark.parametrize(
    "behaviour, error",
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("502", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("timeout", openai.APITimeoutError),
        ("drop", openai.APIConnectionError),
    ],
)
def test_http_faults_surface_as_sdk_errors(oai, behaviour, error):
    client = openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=0, timeout=0.2)
    oai.fail("/v1/embeddings", behaviour)

    with pytest.raises(error):
        client.embeddings.create(model="m", input="x")
    assert client.embeddings.create(model="m", input="x").data  # one fault, one request


def test_a_malformed_body_is_caught_only_with_strict_validation(oai, client):
    oai.fail("/v1/embeddings", "malformed", "malformed")
    strict = openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=0, _strict_response_validation=True)

    with pytest.raises(openai.APIResponseValidationError):
        strict.embeddings.create(model="m", input="x", encoding_format="float")
    # Without it the SDK hands back the HTML text in place of the response object.
    assert client.embeddings.create(model="m", input="x", encoding_format="float") == "<html>oops</html>"


def test_the_sdk_retries_past_queued_faults(oai):
    client = openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=2)
    oai.fail("/v1/embeddings", "429", "503")

    assert len(client.embeddings.create(model="m", input="x").data) == 1
    assert [r["headers"]["x-stainless-retry-count"] for r in oai.requests] == ["0", "1", "2"]
    assert oai.embedding_requests == 1


def test_fail_always_lasts_until_cleared(oai, client):
    oai.fail_always("/v1/embeddings", "503")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.embeddings.create(model="m", input="x")

    oai.clear_faults()

    assert client.embeddings.create(model="m", input="x").data
    with pytest.raises(ValueError, match="unknown behaviour"):
        oai.fail("/v1/embeddings", "explode")


def test_latency_slows_each_request_by_about_that_much(oai, client):
    client.embeddings.create(model="m", input="warm up")
    oai.latency = 0.3

    started = time.monotonic()
    client.embeddings.create(model="m", input="x")

    assert 0.3 <= time.monotonic() - started < 0.7


# Pinecone: data


def test_upsert_query_fetch_and_delete(pc, index):
    assert (
        index.upsert(
            vectors=[
                ("a", [1, 0, 0, 0], {"year": 2020, "genre": "drama"}),
                {"id": "b", "values": [1, 1, 0, 0]},
                ("c", [0, 0, 1, 0], {"genre": "news"}),
            ]
        ).upserted_count
        == 3
    )

    bare = index.query(top_k=2, vector=[1, 0.1, 0, 0])
    full = index.query(top_k=5, vector=[1, 0.1, 0, 0], include_values=True, include_metadata=True)

    assert [m.id for m in bare.matches] == ["a", "b"] and bare.matches[0].score > bare.matches[1].score
    assert bare.matches[0].values == [] and bare.matches[0].metadata is None
    assert [m.id for m in full.matches] == ["a", "b", "c"] and full.matches[2].score == pytest.approx(0.0)
    assert full.matches[0].values == [1.0, 0.0, 0.0, 0.0]
    assert full.matches[0].metadata == {"year": 2020.0, "genre": "drama"}  # numbers come back as floats
    assert full.usage.read_units == 1 and full.namespace == ""

    fetched = index.fetch(ids=["a", "b", "missing"])
    assert set(fetched.vectors) == {"a", "b"} and fetched.vectors["b"].metadata is None
    assert fetched.vectors["a"].values == [1.0, 0.0, 0.0, 0.0]

    index.delete(ids=["a", "missing"])
    assert set(pc.vectors()) == {"b", "c"}
    index.delete(filter={"genre": "news"})
    assert set(pc.vectors()) == {"b"}
    index.delete(delete_all=True)
    assert pc.vectors() == {}
    assert (pc.upsert_requests, pc.upserted_vectors, pc.query_requests, pc.delete_requests) == (1, 3, 2, 3)

    pc.reset()
    assert (pc.requests, pc.upsert_requests, pc.delete_requests) == ([], 0, 0)


def test_namespaces_are_kept_apart_and_counted(pc, index):
    index.upsert(vectors=[("a", [1, 0, 0, 0], {"kind": "x"}), ("b", [0, 1, 0, 0])])
    index.upsert(vectors=[("a", [0, 0, 1, 0])], namespace="other")

    assert [m.id for m in index.query(top_k=10, vector=[1, 0, 0, 0], namespace="other").matches] == ["a"]
    assert pc.vectors("other") == {"a": ([0.0, 0.0, 1.0, 0.0], None)}
    assert pc.vectors()["a"] == ([1.0, 0.0, 0.0, 0.0], {"kind": "x"})
    index.delete(delete_all=True, namespace="other")
    assert set(pc.vectors()) == {"a", "b"}

    index.upsert(vectors=[("z", [0, 0, 0, 1])], namespace="other")
    stats = index.describe_index_stats()
    assert {name: ns.vector_count for name, ns in stats.namespaces.items()} == {"__default__": 2, "other": 1}
    assert (stats.total_vector_count, stats.dimension, stats.metric, stats.vector_type) == (3, 4, "cosine", "dense")
    assert index.describe_index_stats(filter={"kind": "x"}).total_vector_count == 1


def test_list_pages_through_ids_in_order(index):
    index.upsert(vectors=[(f"doc#{n}", [1, n, 0, 0]) for n in (5, 1, 3, 0, 6, 2, 4)] + [("other", [0, 1, 0, 0])])

    pages = list(index.list(prefix="doc#", limit=3))

    assert [[item.id for item in page.vectors] for page in pages] == [
        ["doc#0", "doc#1", "doc#2"],
        ["doc#3", "doc#4", "doc#5"],
        ["doc#6"],
    ]
    first = index.list_paginated(limit=7)
    assert first.pagination.next and len(first.vectors) == 7
    last = index.list_paginated(limit=7, pagination_token=first.pagination.next)
    assert [item.id for item in last.vectors] == ["other"] and last.pagination is None
    assert index.list_paginated(namespace="empty").vectors == []


RECORDS = {
    "a": {"genre": "drama", "year": 2019, "tags": ["x", "y"], "draft": False},
    "b": {"genre": "comedy", "year": 2020, "tags": ["y"]},
    "c": {"genre": "drama", "year": 2021},
    "d": {"genre": "news"},
}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ({"genre": "drama"}, "ac"),
        ({"genre": "drama", "year": 2019}, "a"),
        ({"genre": {"$eq": "comedy"}}, "b"),
        ({"year": {"$ne": 2020}}, "acd"),
        ({"year": {"$gt": 2019}}, "bc"),
        ({"year": {"$gte": 2020}}, "bc"),
        ({"year": {"$lt": 2020}}, "a"),
        ({"year": {"$lte": 2020}}, "ab"),
        ({"year": {"$gt": 2019, "$lt": 2021}}, "b"),
        ({"genre": {"$in": ["comedy", "news"]}}, "bd"),
        ({"genre": {"$nin": ["comedy", "news"]}}, "ac"),
        ({"tags": "x"}, "a"),
        ({"tags": {"$in": ["y"]}}, "ab"),
        ({"tags": {"$nin": ["x"]}}, "bcd"),
        ({"draft": False}, "a"),
        ({"draft": {"$eq": 0}}, ""),
        ({"$and": [{"genre": "drama"}, {"year": {"$gt": 2020}}]}, "c"),
        ({"$or": [{"genre": "comedy"}, {"year": {"$lt": 2020}}]}, "ab"),
        ({"$or": [{"$and": [{"genre": "drama"}, {"year": {"$gte": 2021}}]}, {"genre": "news"}]}, "cd"),
    ],
)
def test_metadata_filters(index, expression, expected):
    index.upsert(vectors=[(vid, [1, i, 0, 0], meta) for i, (vid, meta) in enumerate(RECORDS.items())])

    matches = index.query(top_k=10, vector=[1, 0, 0, 0], filter=expression).matches

    assert "".join(sorted(m.id for m in matches)) == expected


# Pinecone: validation and faults


def test_pinecone_rejects_wrong_shapes(pc, index):
    with pytest.raises(ApiError, match="dimension 3 does not match"):
        index.upsert(vectors=[("a", [1, 0, 0])])
    with pytest.raises(ApiError, match="at most 1000"):
        index.upsert(vectors=[(f"v{n}", [1, 0, 0, 0]) for n in range(1001)])
    with pytest.raises(ApiError, match="unknown filter operator"):
        index.query(top_k=1, vector=[1, 0, 0, 0], filter={"year": {"$between": [1, 2]}})
    with pytest.raises(ApiError, match="1 to 1000"):
        index.delete(ids=[f"v{n}" for n in range(1001)])
    with pytest.raises(ApiError) as raised:
        index.query(top_k=1, vector=[1, 0, 0, 0], sparse_vector={"indices": [1], "values": [0.5]})
    assert raised.value.status_code == 400 and "sparseVector" in str(raised.value)

    headers = {"Api-Key": "k", "X-Pinecone-Api-Version": "2026-07"}
    raw = httpx.post(pc.url + "/query", json={"topK": 1, "vector": [1, 0, 0, 0], "bogus": 1}, headers=headers)
    assert raw.status_code == 400 and raw.json()["code"] == 3 and "bogus" in raw.json()["message"]
    nested = {"vectors": [{"id": "a", "values": [1, 0, 0, 0], "metadata": {"n": {"no": 1}}}]}  # the SDK refuses it
    assert httpx.post(pc.url + "/vectors/upsert", json=nested, headers=headers).status_code == 400
    assert httpx.post(pc.url + "/query", content=b"{", headers={"Api-Key": "k"}).status_code == 400
    assert httpx.get(pc.url + "/nowhere").status_code == 404


def test_pinecone_checks_the_key_and_api_version(pc):
    pc.api_key = "right"
    with pytest.raises(UnauthorizedError):
        pinecone.Index(host=pc.url, api_key="wrong").describe_index_stats()
    old = pinecone.Index(host=pc.url, api_key="right", additional_headers={"X-Pinecone-Api-Version": "2024-07"})
    with pytest.raises(ApiError, match="Api-Version"):
        old.describe_index_stats()
    assert pinecone.Index(host=pc.url, api_key="right").describe_index_stats().total_vector_count == 0
    assert pc.requests[-1]["headers"]["api-key"] == "right"


@pytest.mark.parametrize("behaviour", ["429", "500", "drop"])
def test_pinecone_sdk_retries_a_single_fault(pc, index, no_backoff, behaviour):
    pc.fail("/query", behaviour)

    assert index.query(top_k=1, vector=[1, 0, 0, 0]).matches == []
    assert len(pc.requests) == 2


@pytest.mark.parametrize(
    "behaviour, error",
    [
        ("429", RateLimitError),
        ("503", ServiceError),
        ("drop", PineconeConnectionError),
        ("timeout", PineconeTimeoutError),
    ],
)
def test_pinecone_faults_surface_once_retries_run_out(pc, no_backoff, behaviour, error):
    index = pinecone.Index(host=pc.url, api_key="test", timeout=0.2)
    pc.fail("/vectors/upsert", *[behaviour] * 4)  # the first attempt and three retries

    with pytest.raises(error):
        index.upsert(vectors=[("a", [1, 0, 0, 0])])
    assert len(pc.requests) == 4


def test_a_malformed_pinecone_body_is_a_parsing_error(pc, index):
    pc.fail("/describe_index_stats", "malformed")

    with pytest.raises(ResponseParsingError):
        index.describe_index_stats()


# Both: running in a process of their own


@pytest.mark.parametrize(
    "module, extra", [("tests.support.fake_openai", []), ("tests.support.fake_pinecone", ["--dimension", "8"])]
)
def test_the_command_line_serves_until_killed(module, extra):
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--latency", "0.01", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert httpx.get(url + "/nowhere").status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=5)
