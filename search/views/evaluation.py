"""The evaluation page: stored evaluation runs and their trend per strategy and split, the metrics
of analysts' judgments per strategy, and the parameter profiles (admins activate and deactivate)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from omi_memory import charts
from omi_memory.actors import Actor
from omi_memory.dashboard import PageForm, render_page
from omi_memory.roles import admin_view, dashboard_view

from ..evaluation import METRICS, feedback_metrics
from ..models import EvalRun, ParameterProfile
from ..selectors import eval_run_list, eval_run_trends, eval_runs_latest, judged_search_counts
from ..services import profile_activate, profile_deactivate
from ..strategies import params_in_order

EVAL_RUNS_PER_PAGE = 25
CHART_METRICS = (("ndcg@10", "nDCG@10"), ("recall@5", "R@5"))
RELIABLE_SEARCHES = 30  # judged metrics from fewer scored searches carry a warning
PROFILES_SHOWN = 20
TREND_RUNS = 20  # runs per trend chart, the newest


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
        "trends": [
            {"strategy": strategy, "split": split, "chart": _trend_chart(strategy, split, runs)}
            for (strategy, split), runs in eval_run_trends(per_series=TREND_RUNS).items()
        ],
        "profiles": _profiles(),
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


def _profiles() -> list[ParameterProfile]:
    """The newest profiles, each with its held-out (before, after) of the charts' metrics, if tuned."""
    profiles = list(ParameterProfile.objects.all()[:PROFILES_SHOWN])
    for profile in profiles:
        tuned = profile.tuned
        profile.held_out = [(tuned["before"][key], tuned["after"][key]) for key, _ in CHART_METRICS] if tuned else []
        profile.param_items = params_in_order(profile.strategy, profile.params)
    return profiles


def _trend_chart(strategy: str, split: str, runs: list[EvalRun]) -> charts.Chart:
    """nDCG@10 and R@5 of a strategy's runs on a split, oldest first; each point's tooltip names
    the profile and index version the run used."""
    return charts.lines(
        title=f"nDCG@10 and R@5 of {strategy} on {split}, run after run",
        labels=[f"{run.created_at:%m-%d %H:%M}" for run in runs],
        notes=[
            ", ".join(
                [f"profile {run.profile}" if run.profile else "default parameters"]
                + ([f"index {run.index_version}"] if run.index_version else [])
            )
            for run in runs
        ],
        series=[
            charts.Series(label, [run.metrics.get(key) for run in runs], charts.colour(n), dashed=n > 0)
            for n, (key, label) in enumerate(CHART_METRICS)
        ],
        x_title="run (UTC)",
        y_title="score",
        width=460,
        plot_height=110,
        max_labels=4,
    )


@require_POST
@admin_view
def profile_activate_view(request, profile_id: int):
    profile = profile_activate(
        profile=get_object_or_404(ParameterProfile, id=profile_id), actor=Actor.from_request(request)
    )
    messages.success(request, f"Profile {profile.name} is active: {profile.strategy} searches use its parameters.")
    return redirect(reverse("evaluation") + "#profiles")


@require_POST
@admin_view
def profile_deactivate_view(request, profile_id: int):
    profile = get_object_or_404(ParameterProfile, id=profile_id)
    if profile.active:
        profile_deactivate(strategy=profile.strategy, actor=Actor.from_request(request))
        messages.success(request, f"Profile {profile.name} deactivated: {profile.strategy} searches use the defaults.")
    else:
        messages.error(request, f"Profile {profile.name} is not active.")
    return redirect(reverse("evaluation") + "#profiles")
