from datetime import datetime
from functools import partial
from typing import Annotated, Literal

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Router, Schema, Status
from ninja import Query as QueryParams
from ninja.pagination import paginate
from pydantic import ConfigDict, model_validator

from memories.api import MemorySummaryOut
from memories.models import UID_PATTERN, Category, Source
from memories.parts.vectorstores import SearchFilters
from omi_memory import bounds
from omi_memory.actors import Actor
from omi_memory.api_common import (
    ApiSchema,
    Bool,
    Int,
    JobOut,
    Moment,
    NotBlank,
    Pagination,
    RowId,
    Text,
    accepted,
    api_caller,
    check_admin,
    check_uid,
    documented_example,
    errors,
    filter_uid,
    float_between,
    int_between,
    key_uid,
    status_url_of,
)
from omi_memory.errors import Conflict
from omi_memory.throttles import READS, SEARCH, WRITES

from .analysis import clusters, duplicates
from .analysis.clusters import DEFAULT_K_MAX, MAX_CLUSTERS
from .models import ClusterRun, DuplicatePair, Job
from .selectors import eval_run_list, search_log_get
from .services import feedback_record, search_memories
from .strategies import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_STRATEGY,
    FUSIONS,
    MAX_HALF_LIFE_DAYS,
    MAX_K,
    MAX_QUERIES,
    MAX_QUERY_CHARS,
    MAX_TIME_DECAY,
    MIN_HALF_LIFE_DAYS,
    STRATEGIES,
    half_life_from_rate,
)

router = Router(tags=["search"])
clusters_router = Router(tags=["clusters"])
duplicates_router = Router(tags=["duplicates"])
evaluation_router = Router(tags=["evaluation"])


Query = Annotated[NotBlank, Field(max_length=MAX_QUERY_CHARS)]
# The rules between fields that JSON Schema can state: a query (or queries), more than one only for
# multi_query, and not both forms of the decay. (That ends_at is not before starts_at it cannot: the
# description says it.)
_QUERY_RULES = {
    "allOf": [{"not": {"required": ["half_life_days", "time_decay"]}}],
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
    half_life_days: float_between(MIN_HALF_LIFE_DAYS, MAX_HALF_LIFE_DAYS) | None = Field(
        None,
        description=f"time_weighted: a memory this many days older counts half (default {DEFAULT_HALF_LIFE_DAYS:g})",
    )
    time_decay: float_between(0, MAX_TIME_DECAY) | None = Field(
        None,
        description="time_weighted, the seed's form: a rate per day, read as half_life_days = ln 2 / time_decay "
        "(0: no decay); not with half_life_days",
        json_schema_extra={"deprecated": True},
    )
    fusion: Literal[FUSIONS] = "sum"  # type: ignore[valid-type]
    relevance_floor: float_between(0, 1) | None = Field(
        None,
        description="a result whose best vector's cosine with the query is under this is marked weak "
        "(default: the setting SEARCH_RELEVANCE_FLOOR)",
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        if not self.query and not self.queries:
            raise ValueError("give a query (or queries)")
        if self.strategy != "multi_query" and len(self.all_queries()) > 1:
            raise ValueError("several queries need strategy multi_query")
        if {"half_life_days", "time_decay"} <= self.model_fields_set:
            raise ValueError("give half_life_days or time_decay, not both")
        return self

    def half_life(self) -> float | None:
        """In days; None: no decay."""
        if self.time_decay is not None:
            return half_life_from_rate(self.time_decay)
        return DEFAULT_HALF_LIFE_DAYS if self.half_life_days is None else self.half_life_days

    def all_queries(self) -> list[str]:
        return ([self.query] if self.query else []) + list(self.queries or [])


class SearchHitOut(Schema):
    score: float = Field(..., description="0..1, 1 the best the strategy can give (README, Strategies)")
    similarity: float = Field(..., description="the best cosine of the memory's vectors with the query")
    weak: bool = Field(..., description="similarity under the relevance floor: nothing of it resembles the query")
    snippet: str
    highlights: list[tuple[int, int]] = Field(
        ..., description="[start, end) of each word of the snippet that matches a word of the query"
    )
    also: list[int] = Field(..., description="ids of near-duplicates of this memory ranked below it, left out")
    memory: MemorySummaryOut


class SearchOut(Schema):
    search_id: int
    uid: str
    queries: list[str]
    strategy: str
    k: int
    half_life_days: float | None = Field(..., description="the decay time_weighted used (null: none)")
    relevance_floor: float
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
    return search_run(payload, **api_caller(request))


def search_run(payload: SearchIn, **caller) -> dict:
    """Run a search as `payload` says, logged for `caller` (`api_key=` or `user=`): a `SearchOut`
    (the API's answer, and the MCP tool's structured content)."""
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
        half_life_days=payload.half_life(),
        fusion=payload.fusion,
        relevance_floor=payload.relevance_floor,
        **caller,
    )
    return {
        "search_id": result.search_id,
        "uid": payload.uid,
        "queries": queries,
        "strategy": payload.strategy,
        "k": payload.k,
        "half_life_days": payload.half_life(),
        "relevance_floor": result.relevance_floor,
        "took_ms": round(result.took_ms, 2),
        "results": [
            {
                "score": h.score,
                "similarity": h.similarity,
                "weak": h.weak,
                "snippet": h.snippet,
                "highlights": h.highlights,
                "also": h.also,
                "memory": h.memory,
            }
            for h in result.hits
        ],
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


# Clusters: KMeans over one user's memories, as on /clusters/

# Statuses as literal enums: three TextChoices all named `Status` would be one schema in the OpenAPI
# document, the last one's (memories' status filter would then list the pairs' statuses).
JobStatus = Literal[tuple(Job.Status.values)]  # type: ignore[valid-type]
PairStatus = Literal[tuple(DuplicatePair.Status.values)]  # type: ignore[valid-type]


class ClusterRunIn(ApiSchema):
    """A clustering of one user's indexed memories: `k` clusters, or (no `k`) the k with the best
    silhouette in `k_min`..`k_max` (at most a third of the memories). Run as a job."""

    model_config = ConfigDict(json_schema_extra=documented_example({"uid": "alice", "k_min": 2, "k_max": 4}))

    uid: str = Field(..., pattern=UID_PATTERN)
    k: int_between(2, MAX_CLUSTERS) | None = Field(None, description="smaller than the user's indexed memories")
    k_min: int_between(2, MAX_CLUSTERS) = Field(2, description="not over k_max")
    k_max: int_between(2, MAX_CLUSTERS) | None = Field(None, description="default: 10, or k_min when that is more")

    def run_kwargs(self) -> dict:
        k_max = max(DEFAULT_K_MAX, self.k_min) if self.k_max is None else self.k_max
        return {"uid": self.uid, "k": self.k, "k_min": self.k_min, "k_max": k_max}


class ClusterOut(Schema):
    index: int
    label: str
    terms: list[str]
    size: int = Field(..., description="members when the run was done")


class ClusterRunOut(JobOut):
    uid: str
    status: JobStatus
    progress: str
    k_requested: int | None
    k_min: int
    k_max: int
    k: int | None = Field(..., description="the k used (null until done)")
    silhouettes: dict[str, float] = Field(..., description="each k tried and its silhouette")
    memories: int
    embedding_model: str
    clusters: list[ClusterOut]

    resolve_status_url = status_url_of("cluster_run_get")


class ClusterRunFilters(ApiSchema):
    uid: str | None = Field(None, pattern=UID_PATTERN)
    status: JobStatus | None = None


class ClusterMemberOut(Schema):
    x: float = Field(..., description="on the run's map: the first principal component")
    y: float = Field(..., description="the second")
    memory: MemorySummaryOut


ClusterIndex = Annotated[int, Field(ge=0, le=MAX_CLUSTERS)]


@clusters_router.post(
    "/runs",
    response={202: ClusterRunOut, **errors(403, 409)},
    summary="Start a clustering of one user's memories",
    throttle=WRITES,
)
def cluster_run_start(request: HttpRequest, response: HttpResponse, payload: ClusterRunIn):
    check_uid(request, payload.uid)
    run = clusters.cluster_run_create(**payload.run_kwargs(), actor=Actor.from_request(request))
    return accepted(response, reverse("api-v1:cluster_run_get", args=[run.id]), clusters.cluster_run_get(run_id=run.id))


@clusters_router.get(
    "/runs", response={200: list[ClusterRunOut], **errors(403)}, summary="List clustering runs", throttle=READS
)
@paginate(Pagination)
def cluster_run_list(request: HttpRequest, filters: QueryParams[ClusterRunFilters]):
    return clusters.cluster_run_list(uid=filter_uid(request, filters.uid), status=filters.status)


@clusters_router.get(
    "/runs/{int:run_id}",
    response={200: ClusterRunOut, **errors(404)},
    summary="A clustering run: its status, then its clusters",
    throttle=READS,
)
def cluster_run_get(request: HttpRequest, run_id: RowId):
    return clusters.cluster_run_get(run_id=run_id, uid=key_uid(request))


@clusters_router.get(
    "/runs/{int:run_id}/clusters/{int:index}/members",
    response={200: list[ClusterMemberOut], **errors(404, 409)},
    summary="The memories of one cluster of a finished run",
    throttle=READS,
)
@paginate(Pagination)
def cluster_members(request: HttpRequest, run_id: RowId, index: ClusterIndex):
    run = clusters.cluster_run_get(run_id=run_id, uid=key_uid(request))
    if run.status != ClusterRun.Status.DONE:
        raise Conflict(f"cluster run {run.id} is {run.status}, not done", code="not_done")
    return clusters.cluster_run_members(run=run, index=index)


# Duplicates: scans, and the review queue's pairs, as on /duplicates/


class DuplicateScanIn(ApiSchema):
    """A scan for duplicate pairs of one user, or (no uid) of every user: an admin-scope key only
    (a scoped key's scan is of its own uid). Run as a job."""

    model_config = ConfigDict(json_schema_extra=documented_example({"uid": "alice", "threshold": 0.95}))

    uid: str | None = Field(None, pattern=UID_PATTERN)
    threshold: float_between(0, 1, above_low=True) | None = Field(
        None, description="cosine over which two memories pair (default: the setting)"
    )


class DuplicateScanOut(JobOut):
    uid: str = Field(..., description="empty: every user")
    threshold: float
    status: JobStatus
    counts: dict[str, int] = Field(..., description="when done: users, memories, pairs found, created, ...")

    resolve_status_url = status_url_of("duplicate_scan_get")


class PairFilters(ApiSchema):
    uid: str | None = Field(None, pattern=UID_PATTERN)
    status: PairStatus | None = Field(None, description="none: any")


class PairOut(Schema):
    id: int
    uid: str
    similarity: float
    status: PairStatus
    memory_a: MemorySummaryOut
    memory_b: MemorySummaryOut
    kept_id: int | None = Field(..., description="merged: the memory kept (the other was merged into it)")
    resolved_at: datetime | None
    created_at: datetime


class MergeIn(ApiSchema):
    model_config = ConfigDict(json_schema_extra=documented_example({"keep": 1}))

    keep: RowId = Field(..., description="the memory of the pair to keep; the other is merged into it")


@duplicates_router.post(
    "/scans", response={202: DuplicateScanOut, **errors(403)}, summary="Start a duplicate scan", throttle=WRITES
)
def duplicate_scan_start(request: HttpRequest, response: HttpResponse, payload: DuplicateScanIn):
    if payload.uid is not None:
        check_uid(request, payload.uid)
    uid = payload.uid or key_uid(request)
    if uid is None:
        check_admin(request, "a scan of every user")
    scan = duplicates.duplicate_scan_enqueue(uid=uid, threshold=payload.threshold, actor=Actor.from_request(request))
    scan.refresh_from_db()
    return accepted(response, reverse("api-v1:duplicate_scan_get", args=[scan.id]), scan)


@duplicates_router.get(
    "/scans/{int:scan_id}",
    response={200: DuplicateScanOut, **errors(404)},
    summary="A duplicate scan: its status, then what it found",
    throttle=READS,
)
def duplicate_scan_get(request: HttpRequest, scan_id: RowId):
    return duplicates.duplicate_scan_get(scan_id=scan_id, uid=key_uid(request))


@duplicates_router.get(
    "/pairs",
    response={200: list[PairOut], **errors(403)},
    summary="List duplicate pairs, most similar first",
    throttle=READS,
)
@paginate(Pagination)
def duplicate_pair_list(request: HttpRequest, filters: QueryParams[PairFilters]):
    return duplicates.duplicate_pair_list(uid=filter_uid(request, filters.uid) or "", status=filters.status or "")


@duplicates_router.get(
    "/pairs/{int:pair_id}", response={200: PairOut, **errors(404)}, summary="A duplicate pair", throttle=READS
)
def duplicate_pair_get(request: HttpRequest, pair_id: RowId):
    return duplicates.duplicate_pair_get(pair_id=pair_id, uid=key_uid(request))


def _resolve(request: HttpRequest, pair_id: int, resolve) -> DuplicatePair:
    """Merge, unmerge or dismiss a pair (`resolve(pair_id=, actor=)`) with a key scoped to its
    uid (another uid's pair: 404), or with one that has the admin scope; the pair as it is now."""
    if key_uid(request) is None:
        check_admin(request, "resolving another user's pairs")
    duplicates.duplicate_pair_get(pair_id=pair_id, uid=key_uid(request))
    resolve(pair_id=pair_id, actor=Actor.from_request(request))
    return duplicates.duplicate_pair_get(pair_id=pair_id)


RESOLVED = {200: PairOut, **errors(403, 404, 409)}


@duplicates_router.post(
    "/pairs/{int:pair_id}/merge",
    response=RESOLVED,
    summary="Merge a pair: keep one memory, merge the other into it",
    throttle=WRITES,
)
def duplicate_pair_merge(request: HttpRequest, pair_id: RowId, payload: MergeIn):
    return _resolve(request, pair_id, partial(duplicates.duplicate_pair_merge, keep_id=payload.keep))


@duplicates_router.post(
    "/pairs/{int:pair_id}/unmerge",
    response=RESOLVED,
    summary="Undo a merge: the merged memory is processed again and the pair is open again",
    throttle=WRITES,
)
def duplicate_pair_unmerge(request: HttpRequest, pair_id: RowId):
    return _resolve(request, pair_id, duplicates.duplicate_pair_unmerge)


@duplicates_router.post(
    "/pairs/{int:pair_id}/dismiss", response=RESOLVED, summary="Dismiss a pair: not duplicates", throttle=WRITES
)
def duplicate_pair_dismiss(request: HttpRequest, pair_id: RowId):
    return _resolve(request, pair_id, duplicates.duplicate_pair_dismiss)


# Evaluation runs (admin scope), as on /evaluation/


class EvalRunFilters(ApiSchema):
    strategy: Literal[STRATEGIES] | None = None  # type: ignore[valid-type]
    split: Literal["dev", "holdout", "all"] | None = None


class EvalRunOut(Schema):
    id: int
    created_at: datetime
    dataset: str
    split: str
    strategy: str
    params: dict
    metrics: dict = Field(..., description="queries, recall@1, recall@5, recall@10, mrr, ndcg@10, by_category")
    embedding_model: str
    seconds: float


@evaluation_router.get(
    "/runs",
    response={200: list[EvalRunOut], **errors(403)},
    summary="List evaluation runs, newest first",
    throttle=READS,
)
@paginate(Pagination)
def evaluation_runs(request: HttpRequest, filters: QueryParams[EvalRunFilters]):
    check_admin(request, "evaluation runs")
    return eval_run_list(strategy=filters.strategy or "", split=filters.split or "")
