"""Reads about searches. `uid=None` means every user (a key that is not scoped)."""

import time

from django.conf import settings
from django.db.models import Count, Max

from omi_memory.errors import NotFound

from . import search_log
from .models import DuplicatePair, EvalRun, SearchLog


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


def eval_runs_latest() -> list[EvalRun]:
    """The newest evaluation run of each (strategy, split), by split then strategy."""
    newest = (
        EvalRun.objects.order_by().values("strategy", "split").annotate(last=Max("id")).values_list("last", flat=True)
    )
    return list(EvalRun.objects.filter(id__in=list(newest)).order_by("split", "strategy"))


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
