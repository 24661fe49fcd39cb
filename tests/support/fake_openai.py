"""A local fake of the OpenAI API (embeddings and chat completions), for tests and benchmarks.

Point the real SDK at it: `openai.OpenAI(base_url=server.url + "/v1", api_key="test")`.
Embeddings are deterministic hashed bags of words, so texts sharing words are close;
chat completions answer with whatever `responder(request_json)` returns, as JSON content.

Run it alone with `python -m tests.support.fake_openai --port 8001 --latency 0.05`.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import time
import zlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from tests.support.fake_server import FakeServer, HttpError, Request, cli_arguments, require_keys, serve_until_killed

Responder = Callable[[dict[str, Any]], dict[str, Any]]

MODEL_DIMENSIONS = {"text-embedding-3-large": 3072}
DEFAULT_DIMENSIONS = 1536
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
EMBEDDING_KEYS = {"model", "input", "dimensions", "encoding_format", "user"}
# What `chat.completions.parse(model=, messages=, response_format=, temperature=)` sends
# ("stream" is always sent, as false), plus a few common generation settings.
CHAT_KEYS = {
    "model",
    "messages",
    "stream",
    "response_format",
    "temperature",
    "max_completion_tokens",
    "max_tokens",
    "seed",
    "user",
}
ROLES = {"system", "developer", "user", "assistant", "tool"}
CATEGORY_WORDS = [
    ("health", ("dentist", "doctor")),
    ("finance", ("budget", "mortgage", "bank")),
    ("work", ("meeting", "deploy", "sprint")),
]
REFUSAL = "I can't help with that."


def estimate_tokens(text: str) -> int:
    """A rough token count: a token per 4 bytes of UTF-8."""
    return math.ceil(len(text.encode()) / 4)


def pseudo_embedding(text: str, dimensions: int) -> np.ndarray:
    """A deterministic float32 unit vector for `text`: signed feature hashing (CRC-32) of its
    word unigrams and bigrams."""
    words = re.findall(r"\w+", text.lower())
    features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    hashes = np.fromiter((zlib.crc32(f.encode()) for f in features or [text]), dtype=np.uint64)
    vector = np.zeros(dimensions)
    np.add.at(
        vector, (hashes % dimensions).astype(np.int64), np.where(hashes >> np.uint64(31) & np.uint64(1), 1.0, -1.0)
    )
    norm = np.linalg.norm(vector)
    if not norm:  # every feature cancelled out on a collision
        vector[0], norm = 1.0, 1.0
    return (vector / norm).astype(np.float32)


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def default_responder(request: dict[str, Any]) -> dict[str, Any]:
    """A plausible structured extraction of the last user message (a conversation transcript)."""
    text = next((message_text(m) for m in reversed(request["messages"]) if m["role"] == "user"), "")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    lowered = text.lower()
    category = next((name for name, words in CATEGORY_WORDS if any(w in lowered for w in words)), "other")
    actions = [s.split("I need to", 1)[1].strip().rstrip(".!?") for s in sentences if "I need to" in s]
    return {
        "title": " ".join(text.split()[:6]),
        "overview": " ".join(sentences[:2]),
        "emoji": "🧠",
        "category": category,
        "action_items": [{"description": a[:1].upper() + a[1:], "due_at": None} for a in actions if a],
        "events": [],
    }


class FakeOpenAI(FakeServer):
    """`POST /v1/embeddings` and `POST /v1/chat/completions`, with OpenAI's shapes and errors."""

    behaviours: ClassVar[frozenset[str]] = FakeServer.behaviours | {
        "wrong_count",
        "invalid_json",
        "schema_mismatch",
        "refusal",
        "length",
        "content_filter",
    }

    def __init__(self, *, responder: Responder = default_responder, **options: Any) -> None:
        super().__init__(**options)
        self.responder = responder
        self.embedding_requests = 0
        self.embedded_inputs = 0
        self.chat_requests = 0
        self.routes = {
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/chat/completions"): self._chat_completions,
        }

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.embedding_requests = self.embedded_inputs = self.chat_requests = 0

    def error_body(self, error: HttpError) -> dict[str, Any]:
        kind = "server_error" if error.status >= 500 else "requests" if error.status == 429 else "invalid_request_error"
        return {"error": {"message": error.message, "type": kind, "param": None, "code": error.code}}

    def authorize(self, request: Request) -> None:
        scheme, _, key = request["headers"].get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key.strip():
            raise HttpError(
                401, "You didn't provide an API key. Use an Authorization header: Bearer YOUR_KEY.", "invalid_api_key"
            )

    def _embeddings(self, request: Request, fault: str | None) -> dict[str, Any]:
        body = require_keys(request["json"], {"model", "input"}, EMBEDDING_KEYS)
        model = body["model"]
        if not isinstance(model, str) or not model:
            raise HttpError(400, "'model' must be a non-empty string")
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) and t for t in inputs):
            raise HttpError(400, "'input' must be a non-empty string or a non-empty list of non-empty strings")
        if len(inputs) > MAX_INPUTS:
            raise HttpError(400, f"'input' has {len(inputs)} items; at most {MAX_INPUTS} are allowed")
        dimensions = body.get("dimensions", MODEL_DIMENSIONS.get(model, DEFAULT_DIMENSIONS))
        if type(dimensions) is not int or not 1 <= dimensions <= MODEL_DIMENSIONS.get(model, DEFAULT_DIMENSIONS):
            raise HttpError(400, f"'dimensions' must be an integer from 1 to the model's size, got {dimensions!r}")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise HttpError(400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}")
        tokens = [estimate_tokens(text) for text in inputs]
        for count in tokens:
            if count > MAX_INPUT_TOKENS:
                raise HttpError(
                    400,
                    f"This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however "
                    f"you requested {count} tokens ({count} in your prompt; 0 for the completion). "
                    "Please reduce your prompt; or completion length.",
                )

        vectors = [pseudo_embedding(text, dimensions) for text in inputs]
        if fault == "wrong_count":
            vectors = vectors[:-1]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                if encoding == "base64"
                else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        with self.lock:
            self.embedding_requests += 1
            self.embedded_inputs += len(inputs)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)},
        }

    def _chat_completions(self, request: Request, fault: str | None) -> dict[str, Any]:
        body = require_keys(request["json"], {"model", "messages"}, CHAT_KEYS)
        if body.get("stream"):
            raise HttpError(400, "streaming is not supported by this fake")
        messages = body["messages"]
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and m.get("role") in ROLES for m in messages)
        ):
            raise HttpError(400, "'messages' must be a non-empty list of messages, each with a valid 'role'")
        if "response_format" in body:
            check_response_format(body["response_format"])

        content: str | None = json.dumps(self.responder(body), ensure_ascii=False)
        refusal, finish_reason = None, "stop"
        if fault == "invalid_json":
            content = '{"title": "cut'
        elif fault == "schema_mismatch":
            content = json.dumps({"headline": "x"})
        elif fault == "refusal":
            content, refusal = None, REFUSAL
        elif fault == "length":
            content, finish_reason = content[: len(content) // 2], "length"
        elif fault == "content_filter":
            content, finish_reason = None, "content_filter"

        prompt_tokens = sum(estimate_tokens(message_text(m)) for m in messages)
        completion_tokens = estimate_tokens(content or refusal or "")
        with self.lock:
            self.chat_requests += 1
            number = self.chat_requests
        return {
            "id": f"chatcmpl-fake{number:08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def check_response_format(response_format: Any) -> None:
    """Accept only a strict JSON-schema response format, the one `chat.completions.parse` sends."""
    require_keys(response_format, {"type", "json_schema"}, {"type", "json_schema"}, "'response_format'")
    if response_format["type"] != "json_schema":
        raise HttpError(400, "'response_format.type' must be 'json_schema'")
    spec = require_keys(
        response_format["json_schema"],
        {"name", "strict", "schema"},
        {"name", "strict", "schema", "description"},
        "'response_format.json_schema'",
    )
    if not isinstance(spec["name"], str) or spec["strict"] is not True or not isinstance(spec["schema"], dict):
        raise HttpError(400, "'response_format.json_schema' needs a string name, strict: true and an object schema")


if __name__ == "__main__":
    arguments = cli_arguments("A fake OpenAI API (embeddings, chat completions).").parse_args()
    serve_until_killed(FakeOpenAI(port=arguments.port, latency=arguments.latency))
