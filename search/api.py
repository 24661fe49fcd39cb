from datetime import datetime
from functools import partial
from typing import Annotated, Literal

from django.db import transaction
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
    Float,
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
from .experiment_results import experiment_results
from .models import ClusterRun, DuplicatePair, Experiment, Job, RelevanceFeedback
from .selectors import (
    eval_run_list,
    experiment_get,
    experiment_search_counts,
    profile_by_id,
    profile_list,
    search_log_get,
)
from .services import (
    experiment_create,
    experiment_set_state,
    feedback_record,
    profile_activate,
    profile_deactivate,
    result_use_record,
    search_memories,
)
from .strategies import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_STRATEGY,
    FUSIONS,
    HYBRID_SIGNALS,
    HYBRID_WEIGHTS_LATE,
    MAX_HALF_LIFE_DAYS,
    MAX_K,
    MAX_QUERIES,
    MAX_QUERY_CHARS,
    MAX_TIME_DECAY,
    MIN_HALF_LIFE_DAYS,
    PARAMS,
    STRATEGIES,
    half_life_from_rate,
    weight_param,
)

router = Router(tags=["search"])
clusters_router = Router(tags=["clusters"])
duplicates_router = Router(tags=["duplicates"])
evaluation_router = Router(tags=["evaluation"])


Query = Annotated[NotBlank, Field(max_length=MAX_QUERY_CHARS)]


def _params_rules() -> list[dict]:
    """Each strategy's parameters as JSON Schema: the names it has, each a number (an integer when
    whole) in its bounds; hybrid's weights not all 0. (A strategy left out, or null, is hybrid.)"""
    rules = []
    for strategy, params in PARAMS.items():
        chosen = {"strategy": {"const": strategy}}
        allowed: dict = {
            "type": "object",
            "properties": {
                p.name: {"type": "integer" if p.whole else "number", "minimum": p.low, "maximum": p.high}
                for p in params
            },
            "additionalProperties": False,
        }
        if strategy == "hybrid":
            weights = [weight_param(signal) for signal in HYBRID_SIGNALS]
            allowed["not"] = {"required": weights, "properties": {name: {"const": 0} for name in weights}}
        rules.append(
            {
                "if": {"properties": {"strategy": {"enum": [strategy, None]}}}
                if strategy == DEFAULT_STRATEGY
                else {"required": ["strategy"], "properties": chosen},
                "then": {"properties": {"params": {"anyOf": [allowed, {"type": "null"}]}}},
            }
        )
    return rules


# The rules between fields that JSON Schema can state: a query (or queries), more than one only for
# multi_query, not both forms of the decay, and the strategy's own parameters. (That ends_at is not
# before starts_at it cannot: the description says it.)
_QUERY_RULES = {
    "allOf": [{"not": {"required": ["half_life_days", "time_decay"]}}, *_params_rules()],
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
    strategy: Literal[STRATEGIES] | None = Field(  # type: ignore[valid-type]
        None,
        description=f"left out (and fusion, half_life_days, time_decay, params too): {DEFAULT_STRATEGY}, or the "
        "running experiment's arm when it takes this uid in; named: that strategy, outside any experiment",
    )
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
    params: dict[str, Float] | None = Field(
        None,
        description="the strategy's parameters for this search, by name, each in its bounds (others: their "
        "defaults): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{p.name} {p.low:g}..{p.high:g} (default {p.default:g})" for p in params)
            for name, params in PARAMS.items()
            if params
        )
        + f" (hybrid's windows_weight defaults to {HYBRID_WEIGHTS_LATE['windows']:g} under late chunking)",
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

    def strategy_named(self) -> str | None:
        """The strategy asked for, or None when the caller leaves it to the service (an
        experiment may then choose): no strategy and none of its parameters given."""
        if self.strategy or {"fusion", "half_life_days", "time_decay", "params"} & self.model_fields_set:
            return self.strategy or DEFAULT_STRATEGY
        return None

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
    arm: str | None = Field(None, description="an interleaved search: the experiment's arm that picked it (a or b)")
    memory: MemorySummaryOut


class SearchOut(Schema):
    search_id: int
    uid: str
    queries: list[str]
    strategy: str = Field(..., description="the strategy that ranked the results (interleaved: both arms')")
    k: int
    half_life_days: float | None = Field(..., description="the decay time_weighted used (null: none)")
    params: dict[str, float] = Field(
        ..., description="every parameter of the strategy this search used (interleaved: {}, see each arm's)"
    )
    relevance_floor: float
    took_ms: float
    experiment_id: int | None = Field(None, description="the experiment that took this search, if one did")
    arm: str | None = Field(None, description="its arm: a, b, or interleaved")
    results: list[SearchHitOut]


class FeedbackIn(ApiSchema):
    """A judgment of one result (`relevant`), or the implicit signal that it was used (`used`: the
    user opened or clicked it), or both."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["relevant"], "properties": {"relevant": {"type": "boolean"}}},
                {"required": ["used"], "properties": {"used": {"const": True}}},
            ],
            **documented_example({"search_id": 1, "memory_id": 1, "relevant": True, "note": "the visit"}),
        }
    )

    search_id: Int = Field(..., ge=1, le=bounds.MAX_ROW_ID)
    memory_id: Int = Field(..., ge=1, le=bounds.MAX_ROW_ID)
    relevant: Bool | None = Field(None, description="the judgment; may be left out when used is true")
    used: Bool = Field(False, description="the result was used (opened, clicked): an implicit signal")
    note: Text = Field("", max_length=2000)

    @model_validator(mode="after")
    def _something(self):
        if self.relevant is None and not self.used:
            raise ValueError("give relevant (a judgment) or used: true")
        return self


class FeedbackOut(Schema):
    search_id: int
    memory_id: int
    relevant: bool | None = Field(..., description="the result's judgment (null: not judged)")
    note: str
    used: bool


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
        strategy=payload.strategy_named(),
        half_life_days=payload.half_life(),
        fusion=payload.fusion,
        relevance_floor=payload.relevance_floor,
        params=payload.params,
        **caller,
    )
    return {
        "search_id": result.search_id,
        "uid": payload.uid,
        "queries": queries,
        "strategy": result.strategy,
        "k": payload.k,
        "half_life_days": payload.half_life(),
        "params": result.params,
        "relevance_floor": result.relevance_floor,
        "took_ms": round(result.took_ms, 2),
        "experiment_id": result.experiment.id if result.experiment else None,
        "arm": result.arm or None,
        "results": [
            {
                "score": h.score,
                "similarity": h.similarity,
                "weak": h.weak,
                "snippet": h.snippet,
                "highlights": h.highlights,
                "also": h.also,
                "arm": h.arm or None,
                "memory": h.memory,
            }
            for h in result.hits
        ],
    }


@router.post(
    "/feedback",
    response={201: FeedbackOut, **errors(404)},
    summary="Judge one result of a search, or say it was used",
    throttle=WRITES,
)
def feedback(request: HttpRequest, payload: FeedbackIn):
    search_log = search_log_get(search_id=payload.search_id, uid=key_uid(request))
    with transaction.atomic():
        if payload.relevant is not None:
            feedback_record(
                search=search_log,
                memory_id=payload.memory_id,
                relevant=payload.relevant,
                note=payload.note,
                **api_caller(request),
            )
        if payload.used:
            result_use_record(search=search_log, memory_id=payload.memory_id, **api_caller(request))
    judged = RelevanceFeedback.objects.filter(search=search_log, memory_id=payload.memory_id).first()
    return Status(
        201,
        {
            "search_id": search_log.id,
            "memory_id": payload.memory_id,
            "relevant": judged.relevant if judged else None,
            "note": judged.note if judged else "",
            "used": search_log.uses.filter(memory_id=payload.memory_id).exists(),
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


# Experiments (admins: a key for every user, or a signed-in admin in the docs; README, Experiments)

EXPERIMENT_EXAMPLE = {
    "name": "hybrid: sum against rrf",
    "mode": "ab",
    "traffic_share": 0.5,
    "arm_a": {"strategy": "hybrid", "params": {"fusion": "sum"}},
    "arm_b": {"strategy": "hybrid", "params": {"fusion": "rrf"}},
}


class ArmIn(ApiSchema):
    strategy: Literal[STRATEGIES]  # type: ignore[valid-type]
    params: dict[str, Float | str] = Field(
        default_factory=dict,
        description="half_life_days, fusion, and the strategy's own parameters (as POST /search takes them)",
        max_length=20,
    )
    profile: Text = Field("", max_length=100, description="a parameter profile's name; empty: the active one")
    index_version: Text = Field("", max_length=64, description="an index version's name; empty: the active one")


class ArmOut(Schema):
    strategy: str
    params: dict
    profile: str = ""
    index_version: str


class ExperimentIn(ApiSchema):
    """An experiment to define (in draft: start it to let it take searches)."""

    model_config = ConfigDict(json_schema_extra=documented_example(EXPERIMENT_EXAMPLE))

    name: NotBlank = Field(..., max_length=200)
    mode: Literal["ab", "interleave"] = Field(
        "ab", description="ab: each user sees one arm; interleave: both arms' results mixed by team draft"
    )
    traffic_share: float_between(0, 1, above_low=True) = Field(..., description="the share of users taken in")
    uids: list[Annotated[str, Field(pattern=UID_PATTERN)]] = Field(
        default_factory=list, max_length=10000, description="only these users (empty: every user)"
    )
    arm_a: ArmIn
    arm_b: ArmIn


class ExperimentOut(Schema):
    id: int
    name: str
    mode: str
    state: str
    traffic_share: float
    uids: list[str]
    arm_a: ArmOut
    arm_b: ArmOut
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    searches: int = Field(0, description="searches it took so far")


class EstimateOut(Schema):
    n: int = Field(..., description="how many values (searches) the mean is of")
    mean: float | None
    low: float | None = Field(..., description="95% bootstrap interval (null: under two values)")
    high: float | None


class ArmResultsOut(Schema):
    arm: str
    label: str
    searches: int
    judged: int = Field(..., description="searches with at least one judgment")
    judged_share: float | None
    used: int = Field(..., description="searches with at least one result used")
    precision: EstimateOut | None = Field(None, description="ab: relevant share of the judged results")
    ndcg_at_10: EstimateOut | None = Field(None, description="ab: nDCG@10 from judgments")
    credits: int = Field(..., description="interleave: results judged relevant or used that this arm picked")
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class ComparisonOut(Schema):
    metric: str
    difference: float | None = Field(..., description="B - A")
    low: float | None = Field(..., description="95% bootstrap interval of the difference (null: too few)")
    high: float | None
    significant: bool
    sentence: str


class ExperimentResultsOut(Schema):
    experiment: ExperimentOut
    searches: int
    arms: list[ArmResultsOut]
    comparisons: list[ComparisonOut]
    wins_a: int = Field(..., description="interleave: searches with feedback won by arm A")
    ties: int
    wins_b: int


def _experiment_out(experiment: Experiment, searches: int | None = None) -> dict:
    fields = ("id", "name", "mode", "state", "traffic_share", "uids", "arm_a", "arm_b")
    out = {name: getattr(experiment, name) for name in fields}
    out |= {"created_at": experiment.created_at, "started_at": experiment.started_at, "ended_at": experiment.ended_at}
    if searches is None:
        searches = experiment.searches.count()
    return {**out, "searches": searches}


def _estimate(estimate) -> dict | None:
    if estimate is None:
        return None
    low, high = estimate.interval or (None, None)
    return {"n": estimate.n, "mean": estimate.mean, "low": low, "high": high}


@router.post(
    "/experiments",
    response={201: ExperimentOut, **errors(403)},
    summary="Define an experiment (admins)",
    throttle=WRITES,
)
def create_experiment(request: HttpRequest, payload: ExperimentIn):
    check_admin(request, "experiments")
    experiment = experiment_create(
        name=payload.name,
        mode=payload.mode,
        traffic_share=payload.traffic_share,
        uids=payload.uids,
        arm_a=payload.arm_a.model_dump(),
        arm_b=payload.arm_b.model_dump(),
        actor=Actor.from_request(request),
        user=api_caller(request).get("user"),
    )
    return Status(201, _experiment_out(experiment, 0))


@router.get(
    "/experiments", response={200: list[ExperimentOut], **errors(403)}, summary="List experiments", throttle=READS
)
@paginate(Pagination)
def list_experiments(request: HttpRequest):
    check_admin(request, "experiments")
    counts = experiment_search_counts()
    return [_experiment_out(e, counts.get(e.id, 0)) for e in Experiment.objects.all()]


@router.get(
    "/experiments/{int:experiment_id}",
    response={200: ExperimentOut, **errors(403, 404)},
    summary="Get an experiment",
    throttle=READS,
)
def get_experiment(request: HttpRequest, experiment_id: RowId):
    check_admin(request, "experiments")
    return _experiment_out(experiment_get(experiment_id=experiment_id))


def _state_operation(action: str, state: str, summary: str):
    @router.post(
        f"/experiments/{{int:experiment_id}}/{action}",
        response={200: ExperimentOut, **errors(403, 404, 409)},
        summary=summary,
        throttle=WRITES,
        operation_id=f"experiment_{action}",
    )
    def operation(request: HttpRequest, experiment_id: RowId):
        check_admin(request, "experiments")
        experiment = experiment_set_state(experiment_id=experiment_id, state=state, actor=Actor.from_request(request))
        return _experiment_out(experiment)

    return operation


start_experiment = _state_operation(
    "start", Experiment.State.RUNNING, "Start (or resume) an experiment; 409 while another runs"
)
pause_experiment = _state_operation("pause", Experiment.State.PAUSED, "Pause a running experiment")
end_experiment = _state_operation("end", Experiment.State.ENDED, "End an experiment (for good)")


@router.get(
    "/experiments/{int:experiment_id}/results",
    response={200: ExperimentResultsOut, **errors(403, 404)},
    summary="An experiment's results per arm, with 95% bootstrap intervals",
    throttle=READS,
)
def get_experiment_results(
    request: HttpRequest,
    experiment_id: RowId,
    seed: Annotated[
        int, Field(ge=0, le=2**32 - 1, description="the bootstrap's seed (the same: the same intervals)")
    ] = 0,
):
    check_admin(request, "experiments")
    experiment = experiment_get(experiment_id=experiment_id)
    results = experiment_results(experiment, seed=seed)
    return {
        "experiment": _experiment_out(experiment, results.searches),
        "searches": results.searches,
        "arms": [
            {
                "arm": arm.name,
                "label": arm.label,
                "searches": arm.searches,
                "judged": arm.judged,
                "judged_share": arm.judged_share,
                "used": arm.used,
                "precision": _estimate(arm.precision),
                "ndcg_at_10": _estimate(arm.ndcg),
                "credits": arm.credits,
                "latency_p50_ms": arm.latency_p50,
                "latency_p95_ms": arm.latency_p95,
            }
            for arm in results.arms
        ],
        "comparisons": [
            {
                "metric": c.metric,
                "difference": c.difference,
                "low": c.interval[0] if c.interval else None,
                "high": c.interval[1] if c.interval else None,
                "significant": c.significant,
                "sentence": c.sentence,
            }
            for c in results.comparisons
        ],
        "wins_a": results.wins_a,
        "ties": results.ties,
        "wins_b": results.wins_b,
    }


# Parameter profiles (fitted by `manage.py tune`, or made by hand): which one each strategy's searches use


class ProfileOut(Schema):
    id: int
    name: str
    strategy: str
    params: dict = Field(..., description="every parameter of the strategy")
    active: bool = Field(..., description="the strategy's searches use it by default (at most one per strategy)")
    created_at: datetime
    activated_at: datetime | None = Field(None, description="its last activation")
    tuned: dict | None = Field(
        None, description="where `tune` fitted it: folds, queries, held-out metrics before and after (null: by hand)"
    )


class ProfileFilters(ApiSchema):
    strategy: Literal[STRATEGIES] | None = None  # type: ignore[valid-type]


@router.get(
    "/profiles",
    response={200: list[ProfileOut], **errors(403)},
    summary="List parameter profiles, newest first (admins)",
    throttle=READS,
)
@paginate(Pagination)
def list_profiles(request: HttpRequest, filters: QueryParams[ProfileFilters]):
    check_admin(request, "parameter profiles")
    return profile_list(strategy=filters.strategy or "")


@router.get(
    "/profiles/{int:profile_id}",
    response={200: ProfileOut, **errors(403, 404)},
    summary="Get a parameter profile (admins)",
    throttle=READS,
)
def get_profile(request: HttpRequest, profile_id: RowId):
    check_admin(request, "parameter profiles")
    return profile_by_id(profile_id=profile_id)


@router.post(
    "/profiles/{int:profile_id}/activate",
    response={200: ProfileOut, **errors(403, 404)},
    summary="Make a profile the one its strategy's searches use by default (admins; audited)",
    throttle=WRITES,
)
def activate_profile(request: HttpRequest, profile_id: RowId):
    check_admin(request, "parameter profiles")
    return profile_activate(profile=profile_by_id(profile_id=profile_id), actor=Actor.from_request(request))


@router.post(
    "/profiles/{int:profile_id}/deactivate",
    response={200: ProfileOut, **errors(403, 404, 409)},
    summary="Stop using an active profile: its strategy's defaults again (admins; audited; 409 if not active)",
    throttle=WRITES,
)
def deactivate_profile(request: HttpRequest, profile_id: RowId):
    check_admin(request, "parameter profiles")
    profile = profile_by_id(profile_id=profile_id)
    return profile_deactivate(strategy=profile.strategy, actor=Actor.from_request(request), only=profile.id)
