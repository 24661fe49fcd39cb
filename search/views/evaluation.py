"""The evaluation page: stored evaluation runs, and the metrics of analysts' judgments per strategy."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from omi_memory.roles import dashboard_view

from ..evaluation import METRICS, feedback_metrics
from ..models import EvalRun
from ..selectors import eval_runs_latest, judged_search_counts

EVAL_RUNS_PER_PAGE = 25
CHART_METRICS = (("ndcg@10", "nDCG@10"), ("recall@5", "R@5"))


@require_GET
@dashboard_view
def evaluation(request):
    runs = Paginator(EvalRun.objects.order_by("-created_at", "-id"), EVAL_RUNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    for run in runs:
        run.metric_values = [run.metrics.get(name) for name in METRICS]
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "search/evaluation.html#runs", {"runs": runs})
    latest = eval_runs_latest()
    searches = judged_search_counts()
    judged_rows = [
        {
            "strategy": name,
            "judged_searches": searches.get(name, 0),
            **values,
            "metric_values": [values.get(metric) for metric in METRICS],
        }
        for name, values in feedback_metrics().items()
    ]
    scored = [row for row in judged_rows if row["queries"]]
    return render(
        request,
        "search/evaluation.html",
        {
            "runs": runs,
            "latest": latest,
            "runs_chart": bar_chart(
                groups=[f"{run.strategy} · {run.split}" for run in latest],
                series=[(label, [run.metrics.get(key, 0.0) for run in latest]) for key, label in CHART_METRICS],
            ),
            "judged_rows": judged_rows,
            "judged_chart": bar_chart(
                groups=[row["strategy"] for row in scored],
                series=[(label, [row[key] for row in scored]) for key, label in CHART_METRICS],
            ),
        },
    )


CHART_COLORS = ("#3b5bdb", "#f59f00", "#2b8a3e", "#c92a2a")


def bar_chart(*, groups: list[str], series: list[tuple[str, list[float]]], maximum: float = 1.0) -> dict:
    """The geometry of a horizontal grouped bar chart, drawn by `templates/search/_bar_chart.html`:
    one group of bars per label in `groups`, one bar per series (name, a value per group)."""
    label_width, plot_width, bar_height, gap, group_gap, top = 150, 360, 14, 2, 12, 26
    bars, labels, y = [], [], top
    for index, group in enumerate(groups):
        labels.append({"text": group, "y": y + (len(series) * (bar_height + gap) - gap) / 2})
        for number, (name, values) in enumerate(series):
            value = float(values[index] or 0.0)
            width = round(plot_width * max(0.0, min(value, maximum)) / maximum, 1)
            bars.append(
                {
                    "group": group,
                    "series": name,
                    "value": value,
                    "x": label_width,
                    "y": y,
                    "width": width,
                    "height": bar_height,
                    "color": CHART_COLORS[number % len(CHART_COLORS)],
                    "value_x": label_width + width + 4,
                    "text_y": y + bar_height - 3,
                }
            )
            y += bar_height + gap
        y += group_gap - gap
    bottom = y - group_gap + gap
    return {
        "width": label_width + plot_width + 50,
        "height": bottom + 18,
        "top": top,
        "bottom": bottom,
        "label_x": label_width - 8,
        "bars": bars,
        "labels": labels,
        "ticks": [{"x": label_width + plot_width * step / 4, "text": f"{maximum * step / 4:g}"} for step in range(5)],
        "legend": [
            {"name": name, "color": CHART_COLORS[n % len(CHART_COLORS)], "x": label_width + n * 100}
            for n, (name, _) in enumerate(series)
        ],
    }
