"""Search: one user's memories that best answer a query, logged; judgments of the results.

What a user is shown of each result, whatever the strategy: its score (0..1, see search/strategies.py),
whether it is weak (its best vector's cosine with the query under the relevance floor: nothing of
it resembles the query, as for "xyzzy qwerty"), the query's words in its snippet (as BM25 matches
them), and the near-duplicates collapsed under it (`also`: the ids of memories of an open or confirmed
duplicate pair with it, ranked below it).
"""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from memories.models import AuditEvent, Memory, MemoryVector
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import ModelMismatch, SearchFilters, get_vector_store
from memories.services import audit_record
from omi_memory.actors import Actor
from omi_memory.errors import Conflict, NotFound, ValidationFailed
from omi_memory.metrics import SEARCH_DURATION

from . import strategies
from .lexical import matched_spans, query_terms
from .models import ParameterProfile, RelevanceFeedback, SearchLog
from .selectors import near_duplicates, profile_active, profile_get
from .strategies import DEFAULT_HALF_LIFE_DAYS, DEFAULT_STRATEGY, SearchRequest, resolve_params

SNIPPET_CHARS = 300


@dataclass
class SearchHit:
    memory: Memory
    score: float
    vector_id: str
    snippet: str = ""
    similarity: float = 0.0
    weak: bool = False
    also: list[int] = field(default_factory=list)  # near-duplicates shown under this one
    terms: frozenset[str] = frozenset()  # the query's terms, to find in the snippet

    @property
    def highlights(self) -> list[tuple[int, int]]:
        """(start, end) of each word of the snippet that matches a word of the query."""
        return matched_spans(self.snippet, self.terms)

    @property
    def snippet_parts(self) -> list[tuple[str, bool]]:
        """The snippet cut into (text, matched) parts, for the page to mark the matched ones."""
        parts, at = [], 0
        for start, end in self.highlights:
            parts += [(self.snippet[at:start], False), (self.snippet[start:end], True)]
            at = end
        return [part for part in parts + [(self.snippet[at:], False)] if part[0]]


@dataclass
class SearchResult:
    hits: list[SearchHit] = field(default_factory=list)
    took_ms: float = 0.0
    search_id: int | None = None
    relevance_floor: float = 0.0
    params: dict[str, float] = field(default_factory=dict)  # every parameter of the strategy used
    profile: str = ""  # the parameter profile they came from ("": none)


def search_memories(
    *,
    uid: str,
    queries: list[str],
    k: int = 5,
    filters: SearchFilters | None = None,
    strategy: str = DEFAULT_STRATEGY,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
    fusion: str = "sum",
    relevance_floor: float | None = None,
    params: dict | None = None,
    profile: str | bool = True,
    api_key=None,
    user=None,
    log: bool = True,
) -> SearchResult:
    """The `k` searchable memories of `uid` (indexed, or being reprocessed with their old vectors)
    that best answer `queries` by `strategy`, best first, near-duplicates collapsed under the first
    (more are ranked so that k distinct ones are left); those under `relevance_floor` (None:
    `settings.SEARCH_RELEVANCE_FLOOR`) marked weak. The strategy's parameters (search.strategies.PARAMS)
    are its defaults, overridden by a parameter profile's (`profile`: True, the strategy's active
    profile if there is one; False, none; a name, that profile), overridden by `params` for this
    search: a name the strategy does not have or a value out of bounds is a ValidationFailed. Every
    search is logged (`SearchLog`, with every parameter used in `params["strategy_params"]` and the
    profile's name in `params["profile"]`) unless `log=False` (the evaluation's own runs)."""
    started = time.perf_counter()
    used = profile_for(strategy=strategy, profile=profile)
    strategy_params = resolve_params(strategy, used.params if used else None, params)
    filters = filters or SearchFilters()
    floor = settings.SEARCH_RELEVANCE_FLOOR if relevance_floor is None else relevance_floor
    embedder, store = get_embedder(), get_vector_store()
    try:
        store.check_model(embedder.model, embedder.dim)
    except ModelMismatch as exc:
        raise Conflict(str(exc), code="model_mismatch") from exc
    request = SearchRequest(
        uid=uid,
        queries=queries,
        k=2 * k,  # room for the near-duplicates collapsed
        filters=filters,
        strategy=strategy,
        half_life_days=half_life_days,
        fusion=fusion,
        params=strategy_params,
    )
    ranked = strategies.run(request)
    memories = (
        Memory.objects.filter(uid=uid, id__in=[r.memory_id for r in ranked], searchable=True)
        .defer("transcript")
        .in_bulk()
    )
    texts = dict(
        MemoryVector.objects.filter(
            vector_id__in=[r.vector_id for r in ranked if r.vector_id], position__gt=0
        ).values_list("vector_id", "text")
    )
    terms = query_terms(" ".join(queries))
    hits = []
    for r in ranked:
        memory = memories.get(r.memory_id)
        if memory is None:
            continue
        text = texts.get(r.vector_id)
        snippet = _snippet(text, terms) if text else memory.overview[:SNIPPET_CHARS]
        hits.append(SearchHit(memory, r.score, r.vector_id, snippet, r.similarity, r.similarity < floor, terms=terms))
    hits = _collapse_near_duplicates(hits)[:k]
    result = SearchResult(
        hits=hits,
        took_ms=(time.perf_counter() - started) * 1000,
        relevance_floor=floor,
        params=strategy_params,
        profile=used.name if used else "",
    )
    SEARCH_DURATION.labels(strategy).observe(result.took_ms / 1000)
    if log:
        result.search_id = SearchLog.objects.create(
            api_key=api_key,
            user=user,
            uid=uid,
            queries=queries,
            strategy=strategy,
            params={
                "k": k,
                "half_life_days": half_life_days,
                "fusion": fusion,
                "relevance_floor": floor,
                "filters": _filters_json(filters),
                "strategy_params": strategy_params,
                "profile": used.name if used else None,
            },
            results=[{"memory_id": h.memory.id, "score": round(h.score, 6), "weak": h.weak} for h in hits],
            latency_ms=round(result.took_ms, 3),
        ).id
    return result


def _collapse_near_duplicates(hits: list[SearchHit]) -> list[SearchHit]:
    """Each hit that is a near-duplicate of one ranked above it goes into the `also` of the first
    of them (of its group, through chains of pairs), and out of the list."""
    linked = near_duplicates(memory_ids=[hit.memory.id for hit in hits])
    kept: list[SearchHit] = []
    under: dict[int, int] = {}  # memory id -> the position in `kept` of the hit it is shown under (or is)
    for hit in hits:
        firsts = [under[other] for other in linked.get(hit.memory.id, ()) if other in under]
        if firsts:
            under[hit.memory.id] = min(firsts)
            kept[min(firsts)].also.append(hit.memory.id)
        else:
            under[hit.memory.id] = len(kept)
            kept.append(hit)
    return kept


def _filters_json(filters: SearchFilters) -> dict:
    return {
        "starts_at": filters.starts_at.isoformat() if filters.starts_at else None,
        "ends_at": filters.ends_at.isoformat() if filters.ends_at else None,
        "categories": list(filters.categories),
        "sources": list(filters.sources),
    }


def feedback_record(
    *, search: SearchLog, memory_id: int, relevant: bool, note: str = "", api_key=None, user=None
) -> RelevanceFeedback:
    """Record (or change) a judgment of one result of a search."""
    if memory_id not in [r["memory_id"] for r in search.results]:
        raise NotFound(f"memory {memory_id} is not a result of search {search.id}", code="not_a_result")
    feedback, _ = RelevanceFeedback.objects.update_or_create(
        search=search,
        memory_id=memory_id,
        defaults={"relevant": relevant, "note": note, "api_key": api_key, "user": user},
    )
    return feedback


# Parameter profiles


def profile_for(*, strategy: str, profile: str | bool = True) -> ParameterProfile | None:
    """The profile a search with `strategy` uses: True, the active one (if any); False, none; a
    name, that profile (NotFound, or ValidationFailed when it is another strategy's)."""
    if profile is True:
        return profile_active(strategy=strategy)
    if profile is False:
        return None
    found = profile_get(name=profile)
    if found.strategy != strategy:
        raise ValidationFailed(
            f"profile {found.name} is for strategy {found.strategy}, not {strategy}", details={"field": "profile"}
        )
    return found


def profile_create(*, name: str, strategy: str, params: dict, source: dict | None = None) -> ParameterProfile:
    """A new, inactive profile: every parameter of `strategy` (those not given: their defaults)."""
    if not name.strip() or len(name) > ParameterProfile._meta.get_field("name").max_length:
        raise ValidationFailed("a profile's name is 1 to 100 characters", details={"field": "name"})
    try:
        with transaction.atomic():
            return ParameterProfile.objects.create(
                name=name, strategy=strategy, params=resolve_params(strategy, params), source=source or {}
            )
    except IntegrityError as exc:
        raise Conflict(f"a profile named {name!r} exists already", code="duplicate_name") from exc


@transaction.atomic
def profile_activate(*, profile: ParameterProfile, actor: Actor) -> ParameterProfile:
    """Make `profile` the one its strategy's searches use by default (the one active before, if
    another, is deactivated); audited."""
    same = ParameterProfile.objects.filter(strategy=profile.strategy)
    list(same.select_for_update().values_list("id"))  # one activation of a strategy at a time
    previous = same.filter(active=True).exclude(pk=profile.pk).first()  # read after the lock: what is committed
    if previous is not None:
        ParameterProfile.objects.filter(pk=previous.pk).update(active=False)
    profile.active, profile.activated_at = True, timezone.now()
    profile.save(update_fields=["active", "activated_at"])
    _audit_profile(actor, AuditEvent.Action.PROFILE_ACTIVATE, profile, previous=previous.name if previous else None)
    return profile


@transaction.atomic
def profile_deactivate(*, strategy: str, actor: Actor) -> ParameterProfile | None:
    """Searches with `strategy` use its defaults again; the profile that was active (None: none was)."""
    same = ParameterProfile.objects.filter(strategy=strategy)
    list(same.select_for_update().values_list("id"))
    profile = same.filter(active=True).first()
    if profile is not None:
        ParameterProfile.objects.filter(pk=profile.pk).update(active=False)
        profile.active = False
        _audit_profile(actor, AuditEvent.Action.PROFILE_DEACTIVATE, profile)
    return profile


def _audit_profile(actor: Actor, action: str, profile: ParameterProfile, **details) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="parameter_profile",
        target_ids=[profile.id],
        details={"name": profile.name, "strategy": profile.strategy, "params": profile.params, **details},
    )


def _snippet(text: str, terms: frozenset[str]) -> str:
    """The part of a matching window to show: from the turn with most words of the query."""
    lines = text.splitlines()
    best = max(range(len(lines)), key=lambda i: (len(matched_spans(lines[i], terms)), -i))
    snippet = "\n".join(lines[best:])
    return snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
