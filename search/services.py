"""Search: one user's memories that best answer a query, logged; judgments of the results.

What a user is shown of each result, whatever the strategy: its score (0..1, see search/strategies.py),
whether it is weak (its best vector's cosine with the query under the relevance floor: nothing of
it resembles the query, as for "xyzzy qwerty"), the query's words in its snippet (as BM25 matches
them), and the near-duplicates collapsed under it (`also`: the ids of memories of an open or confirmed
duplicate pair with it, ranked below it).

A search that leaves the strategy to the service (`strategy=None`) takes part in the running
experiment (search/experiments.py), if it takes the user in: it runs its arm (A/B), or both arms
interleaved; the log records the experiment and the arm. Experiments are defined, started, paused
and ended here too.
"""

import logging
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from memories.index_versions import index_version_get, index_version_parts
from memories.models import UID_PATTERN, AuditEvent, Memory
from memories.parts.vectorstores import ModelMismatch, SearchFilters
from memories.parts.versions import current_parts, using_version
from memories.services import audit_record
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from omi_memory.metrics import SEARCH_DURATION

from . import strategies
from .experiments import ARMS, INTERLEAVED, arm_search_kwargs, clean_arm, interleave_coin, team_draft
from .lexical import matched_spans, query_terms
from .models import Experiment, ParameterProfile, RelevanceFeedback, ResultUse, SearchLog
from .search_log import search_log_write
from .selectors import (
    experiment_for_search,
    forget_recently_read,
    hit_memories,
    near_duplicates,
    profile_active,
    profile_get,
)
from .strategies import DEFAULT_HALF_LIFE_DAYS, DEFAULT_STRATEGY, SearchRequest, resolve_params

logger = logging.getLogger(__name__)

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
    arm: str = ""  # an interleaved search: the arm that picked this result ("a" or "b")

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
    strategy: str = DEFAULT_STRATEGY  # the one that ranked the hits ("interleaved": both arms')
    experiment: Experiment | None = None
    arm: str = ""  # "a", "b" or "interleaved" when an experiment took the search


def search_memories(
    *,
    uid: str,
    queries: list[str],
    k: int = 5,
    filters: SearchFilters | None = None,
    strategy: str | None = DEFAULT_STRATEGY,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
    fusion: str = "sum",
    relevance_floor: float | None = None,
    params: dict | None = None,
    profile: str | bool = True,
    api_key=None,
    user=None,
    log: bool = True,
    index_version: str | None = None,
) -> SearchResult:
    """The `k` searchable memories of `uid` (indexed, or being reprocessed with their old vectors)
    that best answer `queries` by `strategy`, best first, near-duplicates collapsed under the first
    (more are ranked so that k distinct ones are left); those under `relevance_floor` (None:
    `settings.SEARCH_RELEVANCE_FLOOR`) marked weak. The strategy's parameters (search.strategies.PARAMS)
    are its defaults, overridden by a parameter profile's (`profile`: True, the strategy's active
    profile if there is one; False, none; a name, that profile), overridden by `params` for this
    search: a name the strategy does not have or a value out of bounds is a ValidationFailed. Every
    search is logged (`SearchLog`, with every parameter used in `params["strategy_params"]` and the
    profile's name in `params["profile"]`) unless `log=False` (the evaluation's own runs); the log
    is written after the answer (`search_log.py`), its id at once the result's `search_id`.
    `strategy=None`: the default strategy (with the other arguments), or, when the running
    experiment takes `uid` in (logged searches only), its arm's strategy, parameters and profile,
    or both arms interleaved. `index_version` (e.g. "v2"): search that built index version (its
    embedder and namespace) instead of the active one (an arm names its own)."""
    started = time.perf_counter()
    filters = filters or SearchFilters()
    floor = settings.SEARCH_RELEVANCE_FLOOR if relevance_floor is None else relevance_floor
    experiment, arm = experiment_for_search(uid=uid) if strategy is None and log else (None, "")
    common = {"uid": uid, "queries": queries, "k": k, "filters": filters, "floor": floor}
    chosen = {
        "strategy": strategy or DEFAULT_STRATEGY,
        "half_life_days": half_life_days,
        "fusion": fusion,
        "params": params,
        "profile": profile,
        "index_version": index_version,
    }
    by_arm: dict[str, Ranking] = {}
    arm_ms: dict[str, float] = {}
    try:
        for name in ARMS if arm == INTERLEAVED else [arm] if arm else []:
            arm_started = time.perf_counter()
            by_arm[name] = _ranking(**common, **arm_search_kwargs(experiment.arm(name)))
            arm_ms[name] = round((time.perf_counter() - arm_started) * 1000, 3)
    except ApplicationError as exc:  # an arm that cannot run now (its index version dropped): no experiment
        logger.warning("experiment %s left search of %s alone: %s", experiment.id, uid, exc.message)
        experiment, arm, by_arm, arm_ms = None, "", {}, {}
    if arm == INTERLEAVED:
        shown = {name: {hit.memory.id: hit for hit in by_arm[name].hits} for name in ARMS}
        coin = interleave_coin(experiment, uid, queries)
        ranking = Ranking()
        for memory_id, name in team_draft(list(shown["a"]), list(shown["b"]), k=k, coin=coin):
            ranking.hits.append(shown[name][memory_id])
            ranking.hits[-1].arm = name
        strategy = INTERLEAVED
    else:
        if arm:
            chosen, ranking, arm_ms = arm_search_kwargs(experiment.arm(arm)), by_arm[arm], {}
        else:
            ranking = _ranking(**common, **chosen)
        strategy, half_life_days, fusion = chosen["strategy"], chosen["half_life_days"], chosen["fusion"]
    result = SearchResult(
        hits=ranking.hits,
        took_ms=(time.perf_counter() - started) * 1000,
        relevance_floor=floor,
        params=ranking.params,
        profile=ranking.profile,
        strategy=strategy,
        experiment=experiment,
        arm=arm,
    )
    SEARCH_DURATION.labels(strategy).observe(result.took_ms / 1000)
    if log:
        logged = {
            "k": k,
            "half_life_days": half_life_days,
            "fusion": fusion,
            "relevance_floor": floor,
            "filters": _filters_json(filters),
            "strategy_params": ranking.params,
            "profile": ranking.profile or None,
            "index_version": ranking.index_version,
        }
        if arm == INTERLEAVED:  # each arm's parameters, profile and time
            logged |= {
                "arms": {
                    name: {
                        "strategy_params": by_arm[name].params,
                        "profile": by_arm[name].profile or None,
                        "index_version": by_arm[name].index_version,
                    }
                    for name in ARMS
                },
                "arm_ms": arm_ms,
            }
        result.search_id = search_log_write(
            SearchLog(
                api_key=api_key,
                user=user,
                uid=uid,
                queries=queries,
                strategy=strategy,
                params=logged,
                results=[
                    {
                        "memory_id": h.memory.id,
                        "score": round(h.score, 6),
                        "weak": h.weak,
                        **({"arm": h.arm} if h.arm else {}),
                    }
                    for h in ranking.hits
                ],
                latency_ms=round(result.took_ms, 3),
                experiment=experiment,
                arm=arm,
            )
        )
    return result


@dataclass
class Ranking:
    """One strategy's hits, the parameters it used and the profile they came from."""

    hits: list[SearchHit] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)
    profile: str = ""
    index_version: str = ""  # the version searched ("": the configured parts, no managed version)


def _ranking(
    *,
    uid: str,
    queries: list[str],
    k: int,
    filters: SearchFilters,
    floor: float,
    strategy: str,
    half_life_days: float | None,
    fusion: str,
    params: dict | None,
    profile: str | bool,
    index_version: str | None,
) -> Ranking:
    """One strategy's `k` hits, near-duplicates collapsed, from one index version."""
    parts = index_version_parts(name=index_version) if index_version else current_parts()
    try:
        parts.store.check_model(parts.embedder.model, parts.embedder.dim)
    except ModelMismatch as exc:
        raise Conflict(str(exc), code="model_mismatch") from exc
    with using_version(parts):  # one version for the whole search, whatever is activated meanwhile
        used = profile_for(strategy=strategy, profile=profile)
        strategy_params = resolve_params(strategy, used.params if used else None, params)
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
    memories = hit_memories(uid=uid, matched={r.memory_id: r.vector_id for r in ranked})
    terms = query_terms(" ".join(queries))
    hits = [
        SearchHit(memories[r.memory_id], r.score, r.vector_id, "", r.similarity, r.similarity < floor, terms=terms)
        for r in ranked
        if r.memory_id in memories
    ]
    hits = _collapse_near_duplicates(hits)[:k]
    for hit in hits:  # the snippets of the hits shown only
        text = hit.memory.matched_text
        hit.snippet = _snippet(text, terms) if text else hit.memory.overview[:SNIPPET_CHARS]
    return Ranking(hits, strategy_params, used.name if used else "", parts.version or "")


def _collapse_near_duplicates(hits: list[SearchHit]) -> list[SearchHit]:
    """Each hit that is a near-duplicate of one ranked above it goes into the `also` of the first
    of them (of its group, through chains of pairs), and out of the list."""
    paired = any(hit.memory.paired for hit in hits)  # else no pair to read (`hit_memories`)
    linked = near_duplicates(memory_ids=[hit.memory.id for hit in hits]) if paired else {}
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


def _check_result(search: SearchLog, memory_id: int) -> None:
    if memory_id not in [r["memory_id"] for r in search.results]:
        raise NotFound(f"memory {memory_id} is not a result of search {search.id}", code="not_a_result")


def feedback_record(
    *, search: SearchLog, memory_id: int, relevant: bool, note: str = "", api_key=None, user=None
) -> RelevanceFeedback:
    """Record (or change) a judgment of one result of a search."""
    _check_result(search, memory_id)
    feedback, _ = RelevanceFeedback.objects.update_or_create(
        search=search,
        memory_id=memory_id,
        defaults={"relevant": relevant, "note": note, "api_key": api_key, "user": user},
    )
    return feedback


def result_use_record(*, search: SearchLog, memory_id: int, api_key=None, user=None) -> ResultUse:
    """Record that a result of a search was used (opened, clicked): an implicit signal, kept once."""
    _check_result(search, memory_id)
    use, _ = ResultUse.objects.get_or_create(
        search=search, memory_id=memory_id, defaults={"api_key": api_key, "user": user}
    )
    return use


# Experiments: defined by an admin, then started, paused (and started again), ended. At most one runs.

_TRANSITIONS = {  # to: (from, the audit action)
    Experiment.State.RUNNING: ({Experiment.State.DRAFT, Experiment.State.PAUSED}, AuditEvent.Action.EXPERIMENT_START),
    Experiment.State.PAUSED: ({Experiment.State.RUNNING}, AuditEvent.Action.EXPERIMENT_PAUSE),
    Experiment.State.ENDED: (
        {Experiment.State.DRAFT, Experiment.State.RUNNING, Experiment.State.PAUSED},
        AuditEvent.Action.EXPERIMENT_END,
    ),
}


def experiment_create(
    *,
    name: str,
    arm_a: dict,
    arm_b: dict,
    traffic_share: float,
    mode: str = Experiment.Mode.AB,
    uids: list[str] | None = None,
    actor: Actor,
    user=None,
) -> Experiment:
    """A new experiment, in draft (nothing changes for searches until it is started)."""
    if not name.strip():
        raise ValidationFailed("name: give the experiment a name")
    if mode not in Experiment.Mode.values:
        raise ValidationFailed(f"mode must be one of {', '.join(Experiment.Mode.values)}")
    if not 0 < traffic_share <= 1:
        raise ValidationFailed("traffic_share must be over 0 and at most 1")
    uids = list(dict.fromkeys(uids or []))
    wrong = [uid for uid in uids if not re.fullmatch(UID_PATTERN, uid)]
    if wrong:
        raise ValidationFailed(f"uids: {wrong[0]!r} is not a uid", details={"uids": wrong[:20]})
    arms = {"arm_a": clean_arm("a", arm_a), "arm_b": clean_arm("b", arm_b)}
    for field_name, arm in arms.items():
        try:
            if arm["profile"]:
                profile_for(strategy=arm["strategy"], profile=arm["profile"])
            if arm["index_version"]:
                index_version_get(name=arm["index_version"])
        except ApplicationError as exc:
            which = field_name.removeprefix("arm_")
            raise ValidationFailed(f"arm {which.upper()}: {exc.message}", details={"arm": which}) from None
    with transaction.atomic():
        experiment = Experiment.objects.create(
            name=name.strip(), mode=mode, traffic_share=traffic_share, uids=uids, created_by=user, **arms
        )
        audit_record(
            actor=actor,
            action=AuditEvent.Action.EXPERIMENT_CREATE,
            target_type="experiment",
            target_ids=[experiment.id],
            details={"name": experiment.name, "mode": mode, "traffic_share": traffic_share, **arms},
        )
    return experiment


def experiment_set_state(*, experiment_id: int, state: str, actor: Actor) -> Experiment:
    """Start (a draft or paused experiment), pause (a running one) or end (any not ended yet).
    Conflict for a change its state does not allow, or a start while another one runs."""
    allowed, action = _TRANSITIONS[state]
    now = timezone.now()
    changes = {"state": state, **({"ended_at": now} if state == Experiment.State.ENDED else {})}
    try:
        with transaction.atomic():
            experiment = Experiment.objects.select_for_update().filter(id=experiment_id).first()
            if experiment is None:
                raise NotFound(f"experiment {experiment_id} not found")
            if experiment.state not in allowed:
                raise Conflict(
                    f"experiment {experiment_id} is {experiment.state}: it cannot be {action.label.split()[-1]}",
                    code="experiment_state",
                )
            if state == Experiment.State.RUNNING:
                _check_arms_can_run(experiment)
                if experiment.started_at is None:
                    changes["started_at"] = now
            before = experiment.state
            Experiment.objects.filter(id=experiment_id).update(**changes)
            forget_recently_read()
            audit_record(
                actor=actor,
                action=action,
                target_type="experiment",
                target_ids=[experiment_id],
                details={"name": experiment.name, "from": before, "to": state},
            )
    except IntegrityError:  # another one runs (the database allows one)
        running = Experiment.objects.filter(state=Experiment.State.RUNNING).values_list("id", flat=True).first()
        raise Conflict(
            f"experiment {running} is running: pause or end it before starting another", code="experiment_running"
        ) from None
    experiment.refresh_from_db()
    return experiment


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
    profile.save(update_fields=["active", "activated_at"])  # and this process reads the profiles again
    _audit_profile(actor, AuditEvent.Action.PROFILE_ACTIVATE, profile, previous=previous.name if previous else None)
    return profile


@transaction.atomic
def profile_deactivate(*, strategy: str, actor: Actor, only: int | None = None) -> ParameterProfile | None:
    """Searches with `strategy` use its defaults again; the profile that was active (None: none was).
    `only`: a profile's id, Conflict unless it is the active one."""
    same = ParameterProfile.objects.filter(strategy=strategy)
    list(same.select_for_update().values_list("id"))
    profile = same.filter(active=True).first()
    if only is not None and (profile is None or profile.id != only):
        raise Conflict(f"parameter profile {only} is not the active one of {strategy}", code="not_active")
    if profile is not None:
        ParameterProfile.objects.filter(pk=profile.pk).update(active=False)
        forget_recently_read()
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


def _check_arms_can_run(experiment: Experiment) -> None:
    """Conflict when an arm's index version is gone or still being built."""
    for name in ARMS:
        version = experiment.arm(name).get("index_version")
        if version:
            try:
                index_version_parts(name=version)
            except ApplicationError as exc:
                raise Conflict(f"arm {name.upper()} cannot run: {exc.message}", code="experiment_arm") from None


def _snippet(text: str, terms: frozenset[str]) -> str:
    """The part of a matching window to show: from the turn with most words of the query."""
    lines = text.splitlines()
    best = max(range(len(lines)), key=lambda i: (len(matched_spans(lines[i], terms)), -i))
    snippet = "\n".join(lines[best:])
    return snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
