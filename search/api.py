from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict, model_validator

from memories.api import MemorySummaryOut
from memories.models import UID_PATTERN, Category, Source
from memories.parts.vectorstores import SearchFilters
from omi_memory import bounds
from omi_memory.api_common import (
    ApiSchema,
    Bool,
    Float,
    Int,
    Moment,
    NotBlank,
    Text,
    api_caller,
    check_uid,
    documented_example,
    errors,
    key_uid,
)
from omi_memory.throttles import SEARCH, WRITES

from .selectors import search_log_get
from .services import feedback_record, search_memories
from .strategies import (
    DEFAULT_STRATEGY,
    DEFAULT_TIME_DECAY,
    FUSIONS,
    MAX_K,
    MAX_QUERIES,
    MAX_QUERY_CHARS,
    MAX_TIME_DECAY,
    STRATEGIES,
)

router = Router(tags=["search"])


Query = Annotated[NotBlank, Field(max_length=MAX_QUERY_CHARS)]
# The rules between fields that JSON Schema can state: a query (or queries), and more than one
# only for multi_query. (That ends_at is not before starts_at it cannot: the description says it.)
_QUERY_RULES = {
    "anyOf": [
        {"required": ["query"], "properties": {"query": {"type": "string"}}},
        {"required": ["queries"], "properties": {"queries": {"type": "array"}}},
    ],
    "if": {"required": ["strategy"], "properties": {"strategy": {"const": "multi_query"}}},
    "else": {
        "not": {
            "required": ["query", "queries"],
            "properties": {"query": {"type": "string"}, "queries": {"type": "array"}},
        },
        "properties": {"queries": {"maxItems": 1}},
    },
}


class SearchIn(ApiSchema):
    """A search of one user's memories: a `query` (or `queries`; more than one only with strategy
    `multi_query`). `ends_at`, when given with `starts_at`, is not before it."""

    model_config = ConfigDict(
        json_schema_extra={
            **_QUERY_RULES,
            **documented_example({"uid": "alice", "query": "what did the dentist say", "strategy": "hybrid", "k": 5}),
        }
    )

    uid: str = Field(..., pattern=UID_PATTERN)
    query: Query | None = None
    queries: list[Query] | None = Field(None, min_length=1, max_length=MAX_QUERIES, description="for multi_query")
    strategy: Literal[STRATEGIES] = DEFAULT_STRATEGY  # type: ignore[valid-type]
    k: Int = Field(5, ge=1, le=MAX_K)
    starts_at: Moment | None = Field(None, description="created_at on or after")
    ends_at: Moment | None = Field(None, description="created_at on or before; not before starts_at")
    categories: list[Category] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    time_decay: Float = Field(DEFAULT_TIME_DECAY, ge=0, le=MAX_TIME_DECAY, description="time_weighted: per day")
    fusion: Literal[FUSIONS] = "sum"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _consistent(self):
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        if not self.query and not self.queries:
            raise ValueError("give a query (or queries)")
        if self.strategy != "multi_query" and len(self.all_queries()) > 1:
            raise ValueError("several queries need strategy multi_query")
        return self

    def all_queries(self) -> list[str]:
        return ([self.query] if self.query else []) + list(self.queries or [])


class SearchHitOut(Schema):
    score: float
    snippet: str
    memory: MemorySummaryOut


class SearchOut(Schema):
    search_id: int
    uid: str
    queries: list[str]
    strategy: str
    k: int
    took_ms: float
    results: list[SearchHitOut]


class FeedbackIn(ApiSchema):
    model_config = ConfigDict(
        json_schema_extra=documented_example({"search_id": 1, "memory_id": 1, "relevant": True, "note": "the visit"})
    )

    search_id: Int = Field(..., ge=1, le=bounds.MAX_ROW_ID)
    memory_id: Int = Field(..., ge=1, le=bounds.MAX_ROW_ID)
    relevant: Bool
    note: Text = Field("", max_length=2000)


class FeedbackOut(Schema):
    search_id: int
    memory_id: int
    relevant: bool
    note: str


@router.post(
    "", response={200: SearchOut, **errors(403, 409, 503)}, summary="Search one user's memories", throttle=SEARCH
)
def search(request: HttpRequest, payload: SearchIn):
    check_uid(request, payload.uid)
    filters = SearchFilters(
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        categories=[str(c) for c in payload.categories],
        sources=[str(s) for s in payload.sources],
    )
    queries = payload.all_queries()
    result = search_memories(
        uid=payload.uid,
        queries=queries,
        k=payload.k,
        filters=filters,
        strategy=payload.strategy,
        time_decay=payload.time_decay,
        fusion=payload.fusion,
        **api_caller(request),
    )
    return {
        "search_id": result.search_id,
        "uid": payload.uid,
        "queries": queries,
        "strategy": payload.strategy,
        "k": payload.k,
        "took_ms": round(result.took_ms, 2),
        "results": [{"score": h.score, "snippet": h.snippet, "memory": h.memory} for h in result.hits],
    }


@router.post(
    "/feedback", response={201: FeedbackOut, **errors(404)}, summary="Judge one result of a search", throttle=WRITES
)
def feedback(request: HttpRequest, payload: FeedbackIn):
    search_log = search_log_get(search_id=payload.search_id, uid=key_uid(request))
    judged = feedback_record(
        search=search_log,
        memory_id=payload.memory_id,
        relevant=payload.relevant,
        note=payload.note,
        **api_caller(request),
    )
    return Status(
        201,
        {
            "search_id": judged.search_id,
            "memory_id": judged.memory_id,
            "relevant": judged.relevant,
            "note": judged.note,
        },
    )
