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
    float_between,
    key_uid,
)
from omi_memory.throttles import SEARCH, WRITES

from .selectors import search_log_get
from .services import feedback_record, search_memories
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


Query = Annotated[NotBlank, Field(max_length=MAX_QUERY_CHARS)]


def _params_rules() -> list[dict]:
    """Each strategy's parameters as JSON Schema: the names it has, each a number (an integer when
    whole) in its bounds; hybrid's weights not all 0. (A strategy left out is hybrid.)"""
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
                "if": {"properties": chosen}
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
    params: dict[str, float] = Field(..., description="every parameter of the strategy this search used")
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
        params=payload.params,
        **caller,
    )
    return {
        "search_id": result.search_id,
        "uid": payload.uid,
        "queries": queries,
        "strategy": payload.strategy,
        "k": payload.k,
        "half_life_days": payload.half_life(),
        "params": result.params,
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
