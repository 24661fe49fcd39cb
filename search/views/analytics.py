"""The analytics page: the search log over a time range (top queries, queries that found nothing or
little, latency per strategy over time, judgment coverage)."""

from django.utils import timezone
from django.views.decorators.http import require_GET

from omi_memory import charts
from omi_memory.dashboard import form_errors, render_page
from omi_memory.roles import dashboard_view

from ..analytics import search_analytics
from ..forms import AnalyticsForm


@require_GET
@dashboard_view
def analytics(request):
    form = AnalyticsForm(request.GET)
    form.is_valid()
    starts_at, ends_at = form.time_range(timezone.now())
    data = search_analytics(starts_at=starts_at, ends_at=ends_at)
    context = {
        "form": form,
        "error": form_errors(form),
        "starts_at": starts_at,
        "ends_at": ends_at,
        **data,
        "latency_chart": _latency_chart(data),
    }
    return render_page(request, "search/analytics.html", context, partial="analytics")


def _latency_chart(data: dict) -> charts.Chart:
    """p50 (solid) and p95 (dashed) of each strategy per step, in the strategy's colour."""
    series = []
    for n, row in enumerate(data["strategies"]):
        series += [
            charts.Series(f"{row['strategy']} p50", row["p50_over_time"], charts.colour(n)),
            charts.Series(f"{row['strategy']} p95", row["p95_over_time"], charts.colour(n), dashed=True),
        ]
    step = "hour" if data["bucket_size"].days == 0 else "day" if data["bucket_size"].days == 1 else "week"
    return charts.lines(
        title="Search latency p50 and p95 per strategy over time, in milliseconds",
        labels=data["bucket_labels"],
        series=series,
        x_title=f"{step} (UTC)",
        y_title="ms",
        unit=" ms",
    )
