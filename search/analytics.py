"""Search analytics, read from the search log over a time range: what was searched for most, what
found nothing or only weak results, how long searches took per strategy over time, and how much
of what was shown analysts judged.

A query is its first text, lowercased (the first of a multi_query). A search's results are weak
when its first result was marked weak as it was logged (search/services.py: its best vector's cosine
with the query under the relevance floor, `SEARCH_RELEVANCE_FLOOR`); a strategy's own scores are on
scales of their own (hybrid's are relative to its best), so no threshold is applied to them here.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Count, F, FloatField, Func, IntegerField, Max, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Lower

from .models import RelevanceFeedback, SearchLog

TOP_QUERIES = 20
WEAK = Q(results__0__weak=True)


class JSONArrayLength(Func):
    """The number of elements of a JSON array column (PostgreSQL and SQLite)."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="json_array_length", **extra)


@dataclass(frozen=True)
class Buckets:
    """The steps of a time range: `count` of `size` from `start`."""

    start: datetime
    size: timedelta
    count: int

    @classmethod
    def spanning(cls, starts_at: datetime, ends_at: datetime) -> "Buckets":
        """Hours over up to two days, days up to 90, weeks beyond; the first starts at the start of
        the hour (or day, in UTC) that holds `starts_at`."""
        span = ends_at - starts_at
        if span <= timedelta(days=2):
            size, start = timedelta(hours=1), starts_at.replace(minute=0, second=0, microsecond=0)
        else:
            size = timedelta(days=1) if span <= timedelta(days=90) else timedelta(weeks=1)
            start = starts_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(start, size, max(1, -(-(ends_at - start) // size)))

    def index(self, when: datetime) -> int:
        return min(self.count - 1, (when - self.start) // self.size)

    def labels(self) -> list[str]:
        fmt = "%H:00" if self.size < timedelta(days=1) else "%b %d"
        return [(self.start + i * self.size).astimezone(UTC).strftime(fmt) for i in range(self.count)]


def _annotated(logs: QuerySet) -> QuerySet:
    return logs.annotate(query=Lower(KT("queries__0")), top=Cast(KT("results__0__score"), FloatField()))


def _by_query(logs: QuerySet, *, limit: int) -> list[dict]:
    """Searches grouped by query, the most frequent first: how many, for how many users, the last
    one, and the best top score among them."""
    rows = (
        logs.values("query")
        .annotate(searches=Count("id"), users=Count("uid", distinct=True), last=Max("created_at"), best=Max("top"))
        .order_by("-searches", "query")
    )
    return list(rows[:limit])


def _percentiles(values: list[float]) -> tuple[float, float] | tuple[None, None]:
    if not values:
        return None, None
    p50, p95 = np.percentile(values, [50, 95])
    return round(float(p50), 1), round(float(p95), 1)


def search_analytics(*, starts_at: datetime, ends_at: datetime, limit: int = TOP_QUERIES) -> dict:
    """What the analytics page shows for the searches made in [starts_at, ends_at)."""
    logs = _annotated(SearchLog.objects.filter(created_at__gte=starts_at, created_at__lt=ends_at).order_by())
    buckets = Buckets.spanning(starts_at, ends_at)

    latencies: dict[str, list[list[float]]] = {}
    for created_at, strategy, latency in logs.values_list("created_at", "strategy", "latency_ms"):
        latencies.setdefault(strategy, [[] for _ in range(buckets.count)])[buckets.index(created_at)].append(latency)
    counts = {
        row["strategy"]: row
        for row in logs.values("strategy").annotate(
            searches=Count("id"),
            empty=Count("id", filter=Q(top__isnull=True)),
            weak=Count("id", filter=WEAK),
        )
    }
    judged = dict(
        logs.filter(feedback__isnull=False)
        .values_list("strategy")
        .annotate(n=Count("id", distinct=True))
        .values_list("strategy", "n")
    )
    strategies = []
    for name in sorted(latencies):
        p50, p95 = _percentiles([v for bucket in latencies[name] for v in bucket])
        over_time = [_percentiles(bucket) for bucket in latencies[name]]
        strategies.append(
            {
                **counts[name],
                "judged": judged.get(name, 0),
                "p50": p50,
                "p95": p95,
                "p50_over_time": [p for p, _ in over_time],
                "p95_over_time": [p for _, p in over_time],
            }
        )

    searches = sum(row["searches"] for row in strategies)
    shown = logs.aggregate(n=Sum(JSONArrayLength(F("results"))))["n"] or 0
    judgments = RelevanceFeedback.objects.filter(
        search__created_at__gte=starts_at, search__created_at__lt=ends_at
    ).count()
    judged_searches = sum(judged.values())
    return {
        "floor": settings.SEARCH_RELEVANCE_FLOOR,
        "searches": searches,
        "top_queries": _by_query(logs, limit=limit),
        "no_results": _by_query(logs.filter(top__isnull=True), limit=limit),
        "weak_results": _by_query(logs.filter(WEAK), limit=limit),
        "strategies": strategies,
        "bucket_labels": buckets.labels(),
        "bucket_size": buckets.size,
        "coverage": {
            "searches": searches,
            "judged_searches": judged_searches,
            "searches_percent": round(100 * judged_searches / searches, 1) if searches else None,
            "results": shown,
            "judged_results": judgments,
            "results_percent": round(100 * judgments / shown, 1) if shown else None,
        },
    }
