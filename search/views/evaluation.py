"""The evaluation page: stored evaluation runs, and the metrics of analysts' judgments per strategy."""

from django.views.decorators.http import require_GET

from omi_memory import charts
from omi_memory.dashboard import PageForm, render_page
from omi_memory.roles import dashboard_view

from ..evaluation import METRICS, feedback_metrics
from ..selectors import eval_run_list, eval_runs_latest, judged_search_counts

EVAL_RUNS_PER_PAGE = 25
CHART_METRICS = (("ndcg@10", "nDCG@10"), ("recall@5", "R@5"))
RELIABLE_SEARCHES = 30  # judged metrics from fewer scored searches carry a warning


@require_GET
@dashboard_view
def evaluation(request):
    form = PageForm(request.GET)
    form.is_valid()
    runs = form.page_of(eval_run_list(), EVAL_RUNS_PER_PAGE)
    for run in runs:
        run.metric_values = [run.metrics.get(name) for name in METRICS]
    return render_page(request, "search/evaluation.html", {"runs": runs}, partial="runs", whole=_summaries)


def _summaries() -> dict:
    """The rest of the page: the latest run of each strategy and split, and the judgments'
    metrics per strategy, as tables and charts."""
    latest = eval_runs_latest()
    searches = judged_search_counts()
    judged_rows = [
        {
            "strategy": name,
            "judged_searches": searches.get(name, 0),
            **values,
            "metric_values": [values.get(metric) for metric in METRICS],
            "unreliable": 0 < values["queries"] < RELIABLE_SEARCHES,
        }
        for name, values in feedback_metrics().items()
    ]
    scored = [row for row in judged_rows if row["queries"]]
    return {
        "latest": latest,
        "runs_chart": _metrics_chart(
            "nDCG@10 and R@5 of the latest run of each strategy and split",
            groups=[f"{run.strategy} · {run.split}" for run in latest],
            rows=[run.metrics for run in latest],
            y_title="strategy · split",
        ),
        "judged_rows": judged_rows,
        "reliable_searches": RELIABLE_SEARCHES,
        "judged_chart": _metrics_chart(
            "nDCG@10 and R@5 per strategy, from judgments",
            groups=[
                f"{row['strategy']} ({row['queries']} search{'es' if row['queries'] != 1 else ''})" for row in scored
            ],
            rows=scored,
            y_title="strategy",
        ),
    }


def _metrics_chart(title: str, *, groups: list[str], rows: list[dict], y_title: str) -> charts.Chart:
    return charts.horizontal_bars(
        title=title,
        groups=groups,
        series=[(label, [row.get(key, 0.0) for row in rows]) for key, label in CHART_METRICS],
        x_title="score (0 to 1)",
        y_title=y_title,
    )
