from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import field_validator, model_validator

from memories.api import MemorySummaryOut
from memories.models import UID_PATTERN, Category, Source
from memories.parts.vectorstores import SearchFilters
from omi_memory.api_common import ERRORS, ApiSchema, check_uid, key_uid
from omi_memory.throttles import SEARCH, WRITES

from .selectors import search_log_get
from .services import feedback_record, search_memories
from .strategies import DEFAULT_STRATEGY, DEFAULT_TIME_DECAY, FUSIONS, STRATEGIES

router = Router(tags=["search"])


class SearchIn(ApiSchema):
    uid: str = Field(..., pattern=UID_PATTERN)
    query: str | None = Field(None, min_length=1, max_length=2000)
    queries: list[str] | None = Field(None, min_length=1, max_length=10, description="for multi_query")
    strategy: Literal[STRATEGIES] = DEFAULT_STRATEGY  # type: ignore[valid-type]
    k: int = Field(5, ge=1, le=100)
    starts_at: datetime | None = Field(None, description="created_at on or after")
    ends_at: datetime | None = Field(None, description="created_at on or before")
    categories: list[Category] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    time_decay: float = Field(DEFAULT_TIME_DECAY, ge=0, le=10, description="time_weighted: per day")
    fusion: Literal[FUSIONS] = "sum"  # type: ignore[valid-type]

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("query is empty")
        return value

    @field_validator("queries")
    @classmethod
    def _queries_not_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not q.strip() or len(q) > 2000 for q in value):
            raise ValueError("every query must have 1 to 2000 characters")
        return value

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
    search_id: int
    memory_id: int
    relevant: bool
    note: str = Field("", max_length=2000)


class FeedbackOut(Schema):
    search_id: int
    memory_id: int
    relevant: bool
    note: str


@router.post("", response={200: SearchOut, **ERRORS}, summary="Search one user's memories", throttle=SEARCH)
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
        api_key=request.auth,
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
    "/feedback", response={201: FeedbackOut, **ERRORS}, summary="Judge one result of a search", throttle=WRITES
)
def feedback(request: HttpRequest, payload: FeedbackIn):
    search_log = search_log_get(search_id=payload.search_id, uid=key_uid(request))
    judged = feedback_record(
        search=search_log,
        memory_id=payload.memory_id,
        relevant=payload.relevant,
        note=payload.note,
        api_key=request.auth,
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
