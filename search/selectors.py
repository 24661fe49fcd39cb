"""Reads about searches. `uid=None` means every user (a key that is not scoped)."""

import time

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, QuerySet

from memories.models import Memory, MemoryVector
from omi_memory import recently
from omi_memory.errors import NotFound
from omi_memory.recently import recently_read

from . import search_log
from .experiments import assigned_arm
from .models import DuplicatePair, EvalRun, Experiment, ParameterProfile, SearchLog


def search_log_get(*, search_id: int, uid: str | None = None) -> SearchLog:
    """One logged search, or NotFound: also for another user's search, so ids reveal nothing. A
    search whose log is still being written (`search_log.py`) is waited for, SEARCH_LOG_WAIT seconds
    at most."""
    searches = SearchLog.objects.filter(id=search_id)
    if uid is not None:
        searches = searches.filter(uid=uid)
    search = searches.first()
    if search is None and search_log.reserved(search_id):
        written = SearchLog.objects.filter(id=search_id)  # by anyone: another user's is not waited for
        if not written.exists():
            search_log.writer.flush()  # written by this process, perhaps
            deadline = time.monotonic() + settings.SEARCH_LOG_WAIT
            while not written.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        search = searches.first()
    if search is None:
        raise NotFound(f"search {search_id} not found")
    return search


def judged_search_counts() -> dict[str, int]:
    """How many searches of each strategy have at least one judgment: {strategy: count}."""
    rows = (
        SearchLog.objects.filter(feedback__isnull=False)
        .order_by()
        .values_list("strategy")
        .annotate(n=Count("id", distinct=True))
    )
    return dict(rows)


def eval_run_list(*, strategy: str = "", split: str = "") -> QuerySet[EvalRun]:
    """Stored evaluation runs, newest first, of one strategy and split ("": any)."""
    runs = EvalRun.objects.order_by("-created_at", "-id")
    if strategy:
        runs = runs.filter(strategy=strategy)
    if split:
        runs = runs.filter(split=split)
    return runs


def eval_runs_latest() -> list[EvalRun]:
    """The newest evaluation run of each (strategy, split), by split then strategy."""
    newest = (
        EvalRun.objects.order_by().values("strategy", "split").annotate(last=Max("id")).values_list("last", flat=True)
    )
    return list(EvalRun.objects.filter(id__in=list(newest)).order_by("split", "strategy"))


def profile_get(*, name: str) -> ParameterProfile:
    """A parameter profile by its name, or NotFound."""
    profile = ParameterProfile.objects.filter(name=name).first()
    if profile is None:
        raise NotFound(f"no parameter profile named {name!r}", details={"field": "profile"})
    return profile


def profile_by_id(*, profile_id: int) -> ParameterProfile:
    """A parameter profile by its id, or NotFound."""
    profile = ParameterProfile.objects.filter(id=profile_id).first()
    if profile is None:
        raise NotFound(f"parameter profile {profile_id} not found")
    return profile


def profile_list(*, strategy: str = "") -> QuerySet:
    """The parameter profiles, newest first; of one strategy when given."""
    profiles = ParameterProfile.objects.all()
    return profiles.filter(strategy=strategy) if strategy else profiles


def profile_active(*, strategy: str) -> ParameterProfile | None:
    """The profile that searches with `strategy` use by default, if an admin activated one (read
    on every search: see `omi_memory.recently`)."""
    return recently_read(
        ("profile", strategy), lambda: ParameterProfile.objects.filter(strategy=strategy, active=True).first()
    )


def forget_recently_read(**kwargs) -> None:
    """Read the profiles and the running experiment again at the next search (a receiver of
    ParameterProfile's and Experiment's saves and deletes; called after an update())."""
    recently.forget("profile", "experiment")


TREND_RUNS_READ = 2000  # the newest runs the trends are drawn from


def eval_run_trends(*, per_series: int = 20) -> dict[tuple[str, str], list[EvalRun]]:
    """The last `per_series` runs of each (strategy, split), oldest first: {(strategy, split): runs}."""
    trends: dict[tuple[str, str], list[EvalRun]] = {}
    for run in EvalRun.objects.order_by("-created_at", "-id")[:TREND_RUNS_READ]:
        runs = trends.setdefault((run.strategy, run.split), [])
        if len(runs) < per_series:
            runs.append(run)
    return {key: runs[::-1] for key, runs in sorted(trends.items())}


LINKING = (DuplicatePair.Status.OPEN, DuplicatePair.Status.CONFIRMED)  # the pairs a search collapses


def hit_memories(*, uid: str, matched: dict[int, str]) -> dict[int, Memory]:
    """The searchable memories of `uid` among `matched` (memory id -> the id of the vector that
    matched it, "" for none), by id, without their transcripts, each with two more attributes:
    `matched_text`, the text of that vector when it is a window or a snippet (None otherwise), and
    `paired`, whether it is in a near-duplicate pair (`LINKING`) with another of `matched` (then
    `near_duplicates` says which). One statement, written out: through the ORM, building it took
    longer than the database took to answer it (1.3 against 1.1 ms for 20 memories)."""
    if not matched:
        return {}
    ids = list(matched)
    vector_ids = [vector_id for vector_id in matched.values() if vector_id] or [None]  # IN (NULL): none
    name = connection.ops.quote_name
    columns = ", ".join(f"m.{name(f.column)}" for f in Memory._meta.concrete_fields if f.name != "transcript")
    sql = (
        f"SELECT {columns}, "
        f"(SELECT v.text FROM {name(MemoryVector._meta.db_table)} v WHERE v.memory_id = m.id AND v.position > 0 "
        f"AND v.vector_id IN ({_marks(vector_ids)}) LIMIT 1) AS matched_text, "
        f"EXISTS (SELECT 1 FROM {name(DuplicatePair._meta.db_table)} p WHERE p.status IN ({_marks(LINKING)}) "
        f"AND ((p.memory_a_id = m.id AND p.memory_b_id IN ({_marks(ids)})) "
        f"OR (p.memory_b_id = m.id AND p.memory_a_id IN ({_marks(ids)})))) AS paired "
        f"FROM {name(Memory._meta.db_table)} m WHERE m.uid = %s AND m.searchable AND m.id IN ({_marks(ids)})"
    )
    rows = Memory.objects.raw(sql, [*vector_ids, *LINKING, *ids, *ids, uid, *ids])  # noqa: S611 - no value in the text
    return {memory.id: memory for memory in rows}


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def near_duplicates(*, memory_ids: list[int]) -> dict[int, set[int]]:
    """Among these memories, the others each is a near-duplicate of (an open or confirmed pair)."""
    linked: dict[int, set[int]] = {}
    pairs = DuplicatePair.objects.filter(
        memory_a_id__in=memory_ids, memory_b_id__in=memory_ids, status__in=LINKING
    ).values_list("memory_a_id", "memory_b_id")
    for a, b in pairs:
        linked.setdefault(a, set()).add(b)
        linked.setdefault(b, set()).add(a)
    return linked


def experiment_for_search(*, uid: str) -> tuple[Experiment | None, str]:
    """The running experiment and the arm of `uid` in it ("a", "b", "interleaved"), or (None, "")
    when none runs or it does not take this user in (read on every search: see `omi_memory.recently`)."""
    experiment = recently_read(
        ("experiment",), lambda: Experiment.objects.filter(state=Experiment.State.RUNNING).first()
    )
    arm = assigned_arm(experiment, uid) if experiment else None
    return (experiment, arm) if arm else (None, "")


def experiment_get(*, experiment_id: int) -> Experiment:
    experiment = Experiment.objects.filter(id=experiment_id).first()
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment


def experiment_search_counts() -> dict[int, int]:
    """How many searches each experiment took: {experiment id: count}."""
    rows = SearchLog.objects.filter(experiment__isnull=False).order_by().values_list("experiment")
    return dict(rows.annotate(n=Count("id")))
