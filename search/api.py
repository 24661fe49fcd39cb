from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import field_validator, model_validator

from memories.api import MemorySummaryOut
from memories.models import UID_PATTERN, Category, Source
from omi_memory.api_common import ERRORS, ApiSchema, check_uid

from .services import search_memories
from .vectorstores import SearchFilters

router = Router(tags=["search"])


class SearchIn(ApiSchema):
    uid: str = Field(..., pattern=UID_PATTERN)
    query: str = Field(..., min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=100)
    starts_at: datetime | None = Field(None, description="created_at on or after")
    ends_at: datetime | None = Field(None, description="created_at on or before")
    categories: list[Category] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is empty")
        return value

    @model_validator(mode="after")
    def _range_in_order(self):
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


class SearchHitOut(Schema):
    score: float
    snippet: str
    memory: MemorySummaryOut


class SearchOut(Schema):
    uid: str
    query: str
    k: int
    took_ms: float
    results: list[SearchHitOut]


@router.post("", response={200: SearchOut, **ERRORS}, summary="Search one user's memories by meaning")
def search(request: HttpRequest, payload: SearchIn):
    check_uid(request, payload.uid)
    filters = SearchFilters(
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        categories=[str(c) for c in payload.categories],
        sources=[str(s) for s in payload.sources],
    )
    result = search_memories(uid=payload.uid, query=payload.query, k=payload.k, filters=filters)
    return {
        "uid": payload.uid,
        "query": payload.query,
        "k": payload.k,
        "took_ms": round(result.took_ms, 2),
        "results": [{"score": h.score, "snippet": h.snippet, "memory": h.memory} for h in result.hits],
    }
