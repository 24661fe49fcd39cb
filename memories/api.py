from datetime import datetime
from typing import Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from ninja.security import APIKeyHeader
from pydantic import ConfigDict, model_validator

from omi_memory.actors import Actor
from omi_memory.api_common import (
    ApiSchema,
    Bool,
    JobOut,
    Moment,
    NotBlank,
    Pagination,
    RowId,
    Text,
    accepted,
    check_admin,
    check_uid,
    documented_example,
    errors,
    filter_uid,
    key_uid,
    status_url_of,
)
from omi_memory.errors import Conflict
from omi_memory.throttles import ANON, READS, WRITES

from . import reconcile, selectors, services
from .models import EXTERNAL_ID_MAX, LANGUAGE_LENGTH, UID_PATTERN, ApiKey, Category, Memory, ReconcileRun, Source

router = Router(tags=["memories"])
pipeline_router = Router(tags=["pipeline"])
vectors_router = Router(tags=["index"])


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
    values = filters.dict()
    values["uid"] = filter_uid(request, values["uid"])
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


# The pipeline page's figures and its retries


class UidFilter(ApiSchema):
    uid: str | None = Field(None, pattern=UID_PATTERN, description="one user's (a scoped key: its own)")


class PipelineOut(Schema):
    counts: dict[str, int] = Field(..., description="memories by status")
    busy: int = Field(..., description="queued and processing")
    indexed_last_hour: int
    per_minute: float = Field(..., description="indexed per minute over the last hour")
    buckets: list[int] = Field(..., description="indexed in each 5 minutes of the last hour, oldest first")
    failed_total: int
    failed: list[MemorySummaryOut] = Field(..., description="the 50 most recent failures, with their reasons")


class RetryIn(ApiSchema):
    model_config = ConfigDict(json_schema_extra=documented_example({}))

    memory_id: RowId | None = Field(None, description="one failed memory; none: every failed memory (admin scope)")


class RetryOut(Schema):
    queued: int = Field(..., description="how many failed memories were queued again")
    status_url: str = Field(..., description="the memory (one retried), or the pipeline's figures")


@pipeline_router.get(
    "", response={200: PipelineOut, **errors(403)}, summary="The pipeline's figures and failures", throttle=READS
)
def pipeline(request: HttpRequest, filters: Query[UidFilter]):
    return selectors.pipeline_stats(uid=filter_uid(request, filters.uid))


@pipeline_router.post(
    "/retry",
    response={202: RetryOut, **errors(403, 404, 409)},
    summary="Retry one failed memory, or every one",
    throttle=WRITES,
)
def pipeline_retry(request: HttpRequest, response: HttpResponse, payload: RetryIn):
    actor = Actor.from_request(request)
    if payload.memory_id is None:
        check_admin(request, "retrying every failed memory")
        queued = services.memory_retry_failed(actor=actor)
        return accepted(response, reverse("api-v1:pipeline"), {"queued": queued})
    memory = selectors.memory_get(memory_id=payload.memory_id, uid=key_uid(request))
    if not services.memory_retry_failed(memory_ids=[memory.id], actor=actor):
        raise Conflict(f"memory {memory.id} is {memory.status}, not failed; nothing to retry", code="not_failed")
    return accepted(response, reverse("api-v1:get_memory", args=[memory.id]), {"queued": 1})


class ReconcileIn(ApiSchema):
    model_config = ConfigDict(json_schema_extra=documented_example({"repair": False}))

    repair: Bool = Field(False, description="upsert again what the store lacks and delete its orphans")


class ReconcileRunOut(JobOut):
    status: Literal[tuple(ReconcileRun.Status.values)]  # type: ignore[valid-type]
    trigger: str
    started_by: str
    repair: bool
    store: str
    progress: str
    memories_checked: int
    vectors_checked: int
    missing: int = Field(..., description="expected vectors the store lacks")
    orphaned: int = Field(..., description="store vectors of deleted, failed or unknown memories")
    mismatched: int = Field(..., description="store vectors whose metadata differs")
    repaired: int
    removed: int
    findings: list[dict] = Field(..., description="the first findings of each kind")

    resolve_status_url = status_url_of("reconcile_run_get")


@pipeline_router.post(
    "/reconcile",
    response={202: ReconcileRunOut, **errors(403, 409)},
    summary="Start a reconciliation of every user's vectors with the store",
    throttle=WRITES,
)
def reconcile_run_start(request: HttpRequest, response: HttpResponse, payload: ReconcileIn):
    check_admin(request, "a reconciliation")
    run = reconcile.reconcile_run_start(repair=payload.repair, actor=Actor.from_request(request))
    run.refresh_from_db()
    return accepted(response, reverse("api-v1:reconcile_run_get", args=[run.id]), run)


@pipeline_router.get(
    "/reconcile/{int:run_id}",
    response={200: ReconcileRunOut, **errors(403, 404)},
    summary="A reconciliation: its status, then what it found and repaired",
    throttle=READS,
)
def reconcile_run_get(request: HttpRequest, run_id: RowId):
    check_admin(request, "a reconciliation")
    return selectors.reconcile_run_get(run_id=run_id)


# The index view's figures (admin scope)


class StoreStatsOut(Schema):
    dimension: int | None
    namespaces: dict[str, int] = Field(..., description="vectors per namespace of the index")
    by_kind: dict[str, int] | None = Field(..., description="of this namespace (null: the store cannot count them)")


class IndexRecordOut(Schema):
    store: str
    model: str
    dim: int
    chunking: str
    updated_at: datetime


class KindCountOut(Schema):
    kind: str
    database: int
    store: int | None = Field(..., description="null: the store cannot count by kind")


class UserVectorsOut(Schema):
    uid: str
    memories: int
    indexed: int
    vectors: int


class VectorIndexOut(Schema):
    store: str = Field(..., description="the configured vector store")
    identity: str
    namespace: str
    record: IndexRecordOut | None = Field(..., description="the model and dimension that built it (null: none yet)")
    records: list[IndexRecordOut] = Field(..., description="the model records of every store and namespace")
    stats: StoreStatsOut | None = Field(..., description="what the store says of itself (null: it did not answer)")
    error: str = Field(..., description="why the store did not answer")
    store_vectors: int | None
    database_vectors: int
    kinds: list[KindCountOut]
    users: list[UserVectorsOut]


@vectors_router.get(
    "", response={200: VectorIndexOut, **errors(403)}, summary="The vector index's figures", throttle=READS
)
def vector_index(request: HttpRequest):
    check_admin(request, "the index's figures")
    overview = selectors.vector_index_overview()
    store = overview.pop("store")
    return {**overview, "store": store.name, "identity": store.identity, "namespace": store.namespace}


class VectorOut(Schema):
    vector_id: str
    kind: str
    position: int
    model: str
    dim: int
    text: str = Field(..., description="the window's or snippet's text (empty for the memory's own vector)")
    metadata: dict | None = Field(..., description="what the store holds for it (null: the store lacks it)")


class NeighbourOut(Schema):
    vector_id: str
    memory_id: str = Field(..., description="as the store's metadata names it")
    score: float
    kind: str
    memory: MemorySummaryOut | None = Field(..., description="null: no such memory in the database")


class VectorLookupOut(Schema):
    memory: MemorySummaryOut
    vectors: list[VectorOut]
    chosen: str | None = Field(..., description="the vector whose neighbours are listed (default: the memory's own)")
    neighbours: list[NeighbourOut] = Field(..., description="the store's nearest vectors of the same user, best first")
    error: str = Field(..., description="why the store did not answer")


class VectorLookupIn(ApiSchema):
    vector: Text | None = Field(None, max_length=300, description="one of the memory's vector ids")


@vectors_router.get(
    "/memories/{int:memory_id}",
    response={200: VectorLookupOut, **errors(403, 404)},
    summary="A memory's vectors as the store holds them, and their nearest",
    throttle=READS,
)
def vector_lookup(request: HttpRequest, memory_id: RowId, filters: Query[VectorLookupIn]):
    check_admin(request, "the index's figures")
    memory = selectors.memory_get(memory_id=memory_id, include_deleted=True)
    found = selectors.memory_vector_lookup(memory=memory, vector_id=filters.vector or "")
    return {
        **found,
        "vectors": [{**_vector_fields(v["row"]), "metadata": v["metadata"]} for v in found["vectors"]],
        "chosen": found["chosen"].vector_id if found["chosen"] else None,
        "neighbours": [
            {
                "vector_id": n["match"].vector_id,
                "memory_id": n["match"].memory_id,
                "score": n["match"].score,
                "kind": n["match"].kind,
                "memory": n["memory"],
            }
            for n in found["neighbours"]
        ],
    }


def _vector_fields(row) -> dict:
    return {name: getattr(row, name) for name in ("vector_id", "kind", "position", "model", "dim", "text")}
