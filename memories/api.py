from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from ninja.security import APIKeyHeader
from pydantic import ConfigDict, model_validator

from omi_memory.actors import Actor
from omi_memory.api_common import (
    ApiSchema,
    Moment,
    NotBlank,
    Pagination,
    RowId,
    Text,
    check_scope,
    check_uid,
    documented_example,
    errors,
    key_uid,
)
from omi_memory.throttles import ANON, READS, WRITES

from . import selectors, services
from .models import EXTERNAL_ID_MAX, LANGUAGE_LENGTH, UID_PATTERN, ApiKey, Category, Memory, Source

router = Router(tags=["memories"])


class ApiKeyAuth(APIKeyHeader):
    """The API's auth: an `X-API-Key` header naming an active key (stored hashed)."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        api_key = selectors.api_key_authenticate(raw_key=key or "")
        if api_key is None:
            ANON.check(request)  # 429 instead of 401 once this address has failed too often
        return api_key


# What the API docs offer to try (tests/memories/test_api_docs.py posts each).
MEMORY_EXAMPLE = {
    "uid": "alice",
    "transcript": "Alice: The dentist says my crown is cracked.\nDr. Patel: Come back next Tuesday at 3pm.",
    "source": "omi",
    "language": "en",
    "started_at": "2026-03-02T14:30:00Z",
    "finished_at": "2026-03-02T14:45:00Z",
}


class MemoryIn(ApiSchema):
    """A memory to create. `finished_at`, when given with `started_at`, is not before it."""

    model_config = ConfigDict(json_schema_extra=documented_example(MEMORY_EXAMPLE))

    uid: str = Field(..., pattern=UID_PATTERN, description="The user the memory belongs to.")
    transcript: NotBlank = Field(
        ..., max_length=settings.MAX_TRANSCRIPT_CHARS, description="One turn per line: `Speaker: text`."
    )
    source: Source = Source.OMI
    language: Text = Field("en", min_length=LANGUAGE_LENGTH[0], max_length=LANGUAGE_LENGTH[1])
    started_at: Moment | None = None
    finished_at: Moment | None = Field(None, description="Not before started_at.")
    created_at: Moment | None = Field(None, description="When it happened; defaults to started_at, then now.")
    external_id: Text | None = Field(None, max_length=EXTERNAL_ID_MAX, description="Your own id; unique per uid.")

    @model_validator(mode="after")
    def _times_in_order(self):
        if self.started_at and self.finished_at and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


class MemoryBatchIn(ApiSchema):
    model_config = ConfigDict(
        json_schema_extra=documented_example(
            {"memories": [MEMORY_EXAMPLE, {**MEMORY_EXAMPLE, "transcript": "Alice: Buy milk on the way home."}]}
        )
    )

    memories: list[MemoryIn] = Field(..., min_length=1, max_length=settings.MAX_BATCH_SIZE)


class ActionItemOut(Schema):
    description: str
    completed: bool
    due_at: datetime | None


class EventOut(Schema):
    title: str
    description: str
    start: datetime
    duration_minutes: int


class MemorySummaryOut(Schema):
    id: int
    uid: str
    external_id: str
    source: str
    language: str
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    title: str
    overview: str
    emoji: str
    category: str
    status: str
    searchable: bool = Field(
        ..., description="Search finds it: indexed, or being reprocessed (its old vectors serve until the new ones)."
    )
    failure_reason: str
    attempts: int
    indexed_at: datetime | None
    embedding_model: str
    embedding_dim: int | None


class MemoryOut(MemorySummaryOut):
    transcript: str
    updated_at: datetime
    action_items: list[ActionItemOut]
    events: list[EventOut]

    @staticmethod
    def resolve_action_items(obj: Memory):
        return list(obj.action_items.all())

    @staticmethod
    def resolve_events(obj: Memory):
        return list(obj.events.all())


class MemoryBatchOut(Schema):
    items: list[MemorySummaryOut]


class MemoryFilters(ApiSchema):
    """Filters of the memory list. `ends_at`, when given with `starts_at`, is not before it."""

    uid: str | None = Field(None, pattern=UID_PATTERN)
    status: Memory.Status | None = None
    category: Category | None = None
    source: Source | None = None
    starts_at: Moment | None = Field(None, description="created_at on or after")
    ends_at: Moment | None = Field(None, description="created_at on or before; not before starts_at")

    @model_validator(mode="after")
    def _range_in_order(self):
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


def _refetch(memory: Memory) -> Memory:
    return selectors.memory_get(memory_id=memory.id, include_deleted=True)


@router.post(
    "", response={201: MemoryOut, **errors(403, 409)}, summary="Create a memory from a transcript", throttle=WRITES
)
def create_memory(request: HttpRequest, payload: MemoryIn):
    check_uid(request, payload.uid)
    memory = services.memory_create(**payload.dict())
    return Status(201, _refetch(memory))


@router.post(
    "/batch", response={201: MemoryBatchOut, **errors(403, 409)}, summary="Create up to 100 memories", throttle=WRITES
)
def create_memories(request: HttpRequest, payload: MemoryBatchIn):
    for item in payload.memories:
        check_uid(request, item.uid)
    memories = services.memory_create_many(items=[item.dict() for item in payload.memories])
    fresh = Memory.objects.in_bulk([m.id for m in memories])
    return Status(201, {"items": [fresh[m.id] for m in memories]})


@router.get("", response={200: list[MemorySummaryOut], **errors(403)}, summary="List memories", throttle=READS)
@paginate(Pagination)
def list_memories(request: HttpRequest, filters: Query[MemoryFilters]):
    scoped = key_uid(request)
    if filters.uid is not None:
        check_scope(scoped, filters.uid)
    values = filters.dict()
    values["uid"] = scoped or values["uid"]
    return selectors.memory_list(**values)


@router.get("/{int:memory_id}", response={200: MemoryOut, **errors(404)}, summary="Get a memory", throttle=READS)
def get_memory(request: HttpRequest, memory_id: RowId):
    return selectors.memory_get(memory_id=memory_id, uid=key_uid(request))


@router.delete(
    "/{int:memory_id}", response={204: None, **errors(404)}, summary="Delete a memory and its vectors", throttle=WRITES
)
def delete_memory(request: HttpRequest, memory_id: RowId):
    memory = selectors.memory_get(memory_id=memory_id, uid=key_uid(request))
    services.memory_delete(memory=memory, actor=Actor.from_request(request))
    return Status(204, None)


@router.post(
    "/{int:memory_id}/reprocess",
    response={202: MemoryOut, **errors(404, 409)},
    summary="Run the pipeline again",
    throttle=WRITES,
)
def reprocess_memory(request: HttpRequest, memory_id: RowId):
    memory = selectors.memory_get(memory_id=memory_id, uid=key_uid(request))
    services.memory_reprocess(memory=memory, actor=Actor.from_request(request))
    return Status(202, _refetch(memory))
