"""Reads about searches. `uid=None` means every user (a key that is not scoped)."""

import time

from django.conf import settings
from django.db.models import Count, Max, QuerySet

from omi_memory.errors import NotFound

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


def profile_active(*, strategy: str) -> ParameterProfile | None:
    """The profile that searches with `strategy` use by default, if an admin activated one."""
    return ParameterProfile.objects.filter(strategy=strategy, active=True).first()


TREND_RUNS_READ = 2000  # the newest runs the trends are drawn from


def eval_run_trends(*, per_series: int = 20) -> dict[tuple[str, str], list[EvalRun]]:
    """The last `per_series` runs of each (strategy, split), oldest first: {(strategy, split): runs}."""
    trends: dict[tuple[str, str], list[EvalRun]] = {}
    for run in EvalRun.objects.order_by("-created_at", "-id")[:TREND_RUNS_READ]:
        runs = trends.setdefault((run.strategy, run.split), [])
        if len(runs) < per_series:
            runs.append(run)
    return {key: runs[::-1] for key, runs in sorted(trends.items())}


def near_duplicates(*, memory_ids: list[int]) -> dict[int, set[int]]:
    """Among these memories, the others each is a near-duplicate of (an open or confirmed pair)."""
    linked: dict[int, set[int]] = {}
    pairs = DuplicatePair.objects.filter(
        memory_a_id__in=memory_ids,
        memory_b_id__in=memory_ids,
        status__in=[DuplicatePair.Status.OPEN, DuplicatePair.Status.CONFIRMED],
    ).values_list("memory_a_id", "memory_b_id")
    for a, b in pairs:
        linked.setdefault(a, set()).add(b)
        linked.setdefault(b, set()).add(a)
    return linked


def experiment_for_search(*, uid: str) -> tuple[Experiment | None, str]:
    """The running experiment and the arm of `uid` in it ("a", "b", "interleaved"), or (None, "")
    when none runs or it does not take this user in."""
    experiment = Experiment.objects.filter(state=Experiment.State.RUNNING).first()
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
