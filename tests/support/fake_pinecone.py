"""A local fake of one Pinecone index's data plane (dense, cosine), for tests and benchmarks.

Point the real SDK at it: `pinecone.Index(host=server.url, api_key="test")`. It keeps
namespace -> id -> (values, metadata) in memory and answers upsert, query, fetch, delete,
describe_index_stats and list with Pinecone's wire shapes, metadata filters included.

Run it alone with `python -m tests.support.fake_pinecone --port 8002 --dimension 384`.
"""

from __future__ import annotations

import base64
import binascii
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.support.fake_server import FakeServer, HttpError, Request, cli_arguments, require_keys, serve_until_killed

API_VERSION = "2026-07"  # the X-Pinecone-Api-Version pinecone 10.2.0 sends
DEFAULT_NAMESPACE = "__default__"  # how the default namespace ("") is named in stats
MAX_UPSERT = 1000
MAX_DELETE = 1000
MAX_TOP_K = 10_000
MAX_LIST_LIMIT = 100
COMPARISONS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
GRPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 429: 8, 500: 13, 502: 14, 503: 14}

Record = tuple[np.ndarray, dict[str, Any] | None]
Predicate = Callable[[dict[str, Any]], bool]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def same(a: Any, b: Any) -> bool:
    """Metadata equality, where a boolean never equals a number."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def compile_filter(expression: Any) -> Predicate:
    """A predicate on metadata for a Pinecone filter expression; a malformed filter is a 400."""
    if not isinstance(expression, dict):
        raise HttpError(400, f"a filter must be an object, got {expression!r}")
    parts: list[Predicate] = []
    for key, value in expression.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise HttpError(400, f"{key} needs a non-empty list of filters")
            children = [compile_filter(child) for child in value]
            combine = all if key == "$and" else any
            parts.append(lambda meta, children=children, combine=combine: combine(c(meta) for c in children))
        elif key.startswith("$"):
            raise HttpError(400, f"unknown filter operator {key}")
        elif isinstance(value, dict):
            parts.extend(compile_condition(key, op, operand) for op, operand in value.items())
        else:
            parts.append(compile_condition(key, "$eq", value))
    return lambda meta: all(part(meta) for part in parts)


def compile_condition(field: str, op: str, operand: Any) -> Predicate:
    """A predicate for one `{field: {op: operand}}`; a field the record lacks passes only $ne and $nin.

    A list-of-strings field matches $eq / $in when any element does, as in Pinecone.
    """
    if op not in ("$eq", "$ne", "$in", "$nin", *COMPARISONS):
        raise HttpError(400, f"unknown filter operator {op}")
    if op in ("$eq", "$ne") and not (isinstance(operand, (str, bool)) or is_number(operand)):
        raise HttpError(400, f"{op} on {field} needs a string, number or boolean")
    if op in ("$in", "$nin") and not (
        isinstance(operand, list) and all(isinstance(x, str) or is_number(x) for x in operand)
    ):
        raise HttpError(400, f"{op} on {field} needs a list of strings or numbers")
    if op in COMPARISONS and not is_number(operand):
        raise HttpError(400, f"{op} on {field} needs a number")

    def predicate(meta: dict[str, Any]) -> bool:
        if field not in meta:
            return op in ("$ne", "$nin")
        values = meta[field] if isinstance(meta[field], list) else [meta[field]]
        if op in COMPARISONS:
            return any(is_number(v) and COMPARISONS[op](v, operand) for v in values)
        wanted = operand if op in ("$in", "$nin") else [operand]
        hit = any(same(v, w) for v in values for w in wanted)
        return not hit if op in ("$ne", "$nin") else hit

    return predicate


def checked_metadata(metadata: Any, vector_id: str) -> dict[str, Any]:
    """Metadata as Pinecone stores it (numbers become floats); values of another type are a 400."""
    if not isinstance(metadata, dict):
        raise HttpError(400, f"metadata of vector {vector_id} must be an object")
    stored: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, (str, bool)) or (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            stored[key] = value
        elif is_number(value):
            stored[key] = float(value)
        else:
            raise HttpError(
                400,
                f"metadata field {key!r} of vector {vector_id} must be a string, number, "
                f"boolean or list of strings, got {value!r}",
            )
    return stored


def encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise HttpError(400, "invalid paginationToken") from None


class FakePinecone(FakeServer):
    """One dense cosine index: the data-plane endpoints pinecone.Index calls, in memory."""

    def __init__(
        self, *, dimension: int = 384, api_key: str | None = None, api_version: str = API_VERSION, **options: Any
    ) -> None:
        super().__init__(**options)
        self.dimension = dimension
        self.api_key = api_key
        self.api_version = api_version
        self._data: dict[str, dict[str, Record]] = {}
        self.upsert_requests = self.upserted_vectors = self.query_requests = self.delete_requests = 0
        self.routes = {
            ("POST", "/vectors/upsert"): self._upsert,
            ("POST", "/query"): self._query,
            ("GET", "/vectors/fetch"): self._fetch,
            ("POST", "/vectors/delete"): self._delete,
            ("POST", "/describe_index_stats"): self._describe_index_stats,
            ("GET", "/vectors/list"): self._list,
        }

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._data.clear()
            self.upsert_requests = self.upserted_vectors = self.query_requests = self.delete_requests = 0

    def vectors(self, namespace: str = "") -> dict[str, tuple[list[float], dict[str, Any] | None]]:
        """What a namespace holds: id -> (values, metadata), for tests to look at."""
        with self.lock:
            records = self._data.get(namespace, {})
            return {vid: (values.tolist(), metadata) for vid, (values, metadata) in records.items()}

    def error_body(self, error: HttpError) -> dict[str, Any]:
        return {"code": GRPC_CODES.get(error.status, 2), "message": error.message, "details": []}

    def authorize(self, request: Request) -> None:
        key = request["headers"].get("api-key", "")
        if not key or (self.api_key is not None and key != self.api_key):
            raise HttpError(401, "Invalid API Key")
        version = request["headers"].get("x-pinecone-api-version")
        if version != self.api_version:
            raise HttpError(400, f"X-Pinecone-Api-Version must be {self.api_version}, got {version!r}")

    # Endpoints

    def _upsert(self, request: Request, fault: str | None) -> dict[str, Any]:
        body = require_keys(request["json"], {"vectors"}, {"vectors", "namespace"})
        namespace = self._namespace(body.get("namespace", ""))
        if not isinstance(body["vectors"], list) or len(body["vectors"]) > MAX_UPSERT:
            raise HttpError(400, f"vectors must be a list of at most {MAX_UPSERT} vectors")
        records = {}
        for vector in body["vectors"]:
            require_keys(vector, {"id", "values"}, {"id", "values", "metadata"}, "a vector")
            vector_id = vector["id"]
            if not isinstance(vector_id, str) or not vector_id:
                raise HttpError(400, "a vector id must be a non-empty string")
            metadata = checked_metadata(vector["metadata"], vector_id) if "metadata" in vector else None
            records[vector_id] = (self._values(vector["values"], f"vector {vector_id}"), metadata)
        with self.lock:
            self._data.setdefault(namespace, {}).update(records)
            self.upsert_requests += 1
            self.upserted_vectors += len(body["vectors"])
        return {"upsertedCount": len(body["vectors"])}

    def _query(self, request: Request, fault: str | None) -> dict[str, Any]:
        body = require_keys(
            request["json"],
            {"topK", "vector"},
            {"topK", "vector", "namespace", "filter", "includeValues", "includeMetadata"},
        )
        top_k = body["topK"]
        if type(top_k) is not int or not 1 <= top_k <= MAX_TOP_K:
            raise HttpError(400, f"topK must be an integer from 1 to {MAX_TOP_K}")
        namespace = self._namespace(body.get("namespace", ""))
        query = self._values(body["vector"], "the query vector")
        keep = compile_filter(body["filter"]) if "filter" in body else None
        with self.lock:
            records = [
                (vid, values, meta)
                for vid, (values, meta) in self._data.get(namespace, {}).items()
                if keep is None or keep(meta or {})
            ]
            self.query_requests += 1
        matches = []
        if records:
            matrix = np.stack([values for _, values, _ in records])
            scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
            for i in np.argsort(-scores, kind="stable")[:top_k]:
                vid, values, meta = records[i]
                match = {
                    "id": vid,
                    "score": float(scores[i]),
                    "values": values.tolist() if body.get("includeValues") else [],
                }
                if body.get("includeMetadata") and meta is not None:
                    match["metadata"] = meta
                matches.append(match)
        return {"matches": matches, "namespace": namespace, "usage": {"readUnits": 1}}

    def _fetch(self, request: Request, fault: str | None) -> dict[str, Any]:
        params = require_keys(request["query"], {"ids"}, {"ids", "namespace"}, "the query string")
        namespace = self._namespace(params.get("namespace", [""])[-1])
        with self.lock:
            records = self._data.get(namespace, {})
            found = {vid: records[vid] for vid in params["ids"] if vid in records}
        vectors = {}
        for vid, (values, meta) in found.items():
            vectors[vid] = {"id": vid, "values": values.tolist()}
            if meta is not None:
                vectors[vid]["metadata"] = meta
        return {"vectors": vectors, "namespace": namespace, "usage": {"readUnits": 1}}

    def _delete(self, request: Request, fault: str | None) -> dict[str, Any]:
        body = require_keys(request["json"], set(), {"namespace", "ids", "deleteAll", "filter"})
        namespace = self._namespace(body.get("namespace", ""))
        selectors = [key for key in ("ids", "deleteAll", "filter") if key in body]
        if len(selectors) != 1:
            raise HttpError(400, "a delete needs exactly one of ids, deleteAll and filter")
        ids = body.get("ids")
        if ids is not None and (
            not isinstance(ids, list) or not ids or len(ids) > MAX_DELETE or not all(isinstance(i, str) for i in ids)
        ):
            raise HttpError(400, f"ids must be a list of 1 to {MAX_DELETE} strings")
        if "deleteAll" in body and body["deleteAll"] is not True:
            raise HttpError(400, "deleteAll must be true")
        keep = compile_filter(body["filter"]) if "filter" in body else None
        with self.lock:
            records = self._data.get(namespace, {})
            if keep is not None:
                ids = [vid for vid, (_, meta) in records.items() if keep(meta or {})]
            for vid in ids if ids is not None else list(records):
                records.pop(vid, None)
            if not records:
                self._data.pop(namespace, None)
            self.delete_requests += 1
        return {}

    def _describe_index_stats(self, request: Request, fault: str | None) -> dict[str, Any]:
        body = require_keys(request["json"], set(), {"filter"})
        keep = compile_filter(body["filter"]) if "filter" in body else None
        with self.lock:
            counts = {
                namespace or DEFAULT_NAMESPACE: sum(
                    1 for _, meta in records.values() if keep is None or keep(meta or {})
                )
                for namespace, records in self._data.items()
            }
        return {
            "namespaces": {namespace: {"vectorCount": count} for namespace, count in counts.items() if count},
            "dimension": self.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": "cosine",
            "vectorType": "dense",
        }

    def _list(self, request: Request, fault: str | None) -> dict[str, Any]:
        params = require_keys(
            request["query"], set(), {"namespace", "prefix", "limit", "paginationToken"}, "the query string"
        )
        namespace = self._namespace(params.get("namespace", [""])[-1])
        prefix = params.get("prefix", [""])[-1]
        limit_text = params.get("limit", [str(MAX_LIST_LIMIT)])[-1]
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST_LIMIT:
            raise HttpError(400, f"limit must be an integer from 1 to {MAX_LIST_LIMIT}")
        after = decode_token(params["paginationToken"][-1]) if "paginationToken" in params else None
        with self.lock:
            ids = sorted(
                vid
                for vid in self._data.get(namespace, {})
                if vid.startswith(prefix) and (after is None or vid > after)
            )
        page = ids[: int(limit_text)]
        response: dict[str, Any] = {
            "vectors": [{"id": vid} for vid in page],
            "namespace": namespace,
            "usage": {"readUnits": 1},
        }
        if len(ids) > len(page):
            response["pagination"] = {"next": encode_token(page[-1])}
        return response

    # Helpers

    def _namespace(self, name: Any) -> str:
        if not isinstance(name, str):
            raise HttpError(400, "namespace must be a string")
        return "" if name == DEFAULT_NAMESPACE else name

    def _values(self, values: Any, what: str) -> np.ndarray:
        if not isinstance(values, list) or not all(is_number(x) for x in values):
            raise HttpError(400, f"the values of {what} must be a list of numbers")
        if len(values) != self.dimension:
            raise HttpError(
                400,
                f"Vector dimension {len(values)} does not match the dimension of the index {self.dimension} ({what})",
            )
        array = np.asarray(values, dtype=np.float32)
        if not array.any():
            raise HttpError(400, f"{what} has only zeros; a cosine index needs a non-zero vector")
        return array


if __name__ == "__main__":
    parser = cli_arguments("A fake Pinecone index data plane (dense, cosine).")
    parser.add_argument("--dimension", type=int, default=384, help="the index's vector dimension")
    arguments = parser.parse_args()
    serve_until_killed(FakePinecone(port=arguments.port, latency=arguments.latency, dimension=arguments.dimension))
