"""Dashboard pages about search: search and judge, evaluation, clusters, duplicates.

Thin views over `search.services` / `search.selectors`; roles from `omi_memory.roles`.
"""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from memories.selectors import memory_transcript_starts, memory_uids
from omi_memory.errors import ApplicationError, BackendError, NotFound, ValidationFailed
from omi_memory.roles import admin_view, dashboard_view

from . import clustering, duplicates
from .evaluation import METRICS, feedback_metrics
from .forms import JudgeForm, SearchForm
from .models import EvalRun
from .selectors import eval_runs_latest, judged_search_counts, search_log_get
from .services import SNIPPET_CHARS, feedback_record, search_memories

# ---------------------------------------------------------------------------------------------
# Search and judging
# ---------------------------------------------------------------------------------------------


@require_GET
@dashboard_view
def search_page(request):
    uids = memory_uids()
    form = SearchForm(request.GET, uids=uids)
    context = {"form": form, "uids": uids, "result": None, "error": "", "next_url": request.get_full_path()}
    status = 200
    if not form.is_valid():
        status = 400
    elif form.cleaned_data["all_queries"]:
        try:
            result = search_memories(**form.search_kwargs(), user=request.user)
        except ApplicationError as exc:  # e.g. the index was built by another embedding model
            context["error"], status = exc.message, 400
        except BackendError as exc:
            context["error"] = f"The search could not reach its backend ({exc}). Try again in a moment."
        else:
            _show_transcript_starts(result.hits)
            context["result"] = result
    partial = request.htmx and not request.htmx.history_restore_request
    return render(request, "search/search.html#results" if partial else "search/search.html", context, status=status)


def _show_transcript_starts(hits) -> None:
    """A hit found by the memory's own vector (not one window of its transcript) shows the start
    of its transcript, rather than the overview the page already shows."""
    whole = [hit.memory.id for hit in hits if hit.vector_id in ("", hit.memory.vector_id)]
    starts = memory_transcript_starts(memory_ids=whole, chars=SNIPPET_CHARS) if whole else {}
    for hit in hits:
        hit.snippet = starts.get(hit.memory.id, hit.snippet)


@require_POST
@dashboard_view
def search_judge(request):
    form = JudgeForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        return HttpResponse(f"Cannot record this judgment: {problems}", status=400, content_type="text/plain")
    data = form.cleaned_data
    next_url = data["next"]
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = reverse("search")
    context = {"search_id": data["search_id"], "memory_id": data["memory_id"], "next_url": next_url}
    try:
        search = search_log_get(search_id=data["search_id"])
        judgment = feedback_record(search=search, memory_id=data["memory_id"], relevant=data["relevant"],
                                   note=data["note"], user=request.user)
    except ApplicationError as exc:  # an unknown search, or a memory that is not one of its results
        status = 404 if isinstance(exc, NotFound) else 400
        if request.htmx:
            return render(request, "search/search.html#judge", {**context, "error": exc.message}, status=status)
        return HttpResponse(exc.message, status=status, content_type="text/plain")
    if request.htmx:
        return render(request, "search/search.html#judge", {**context, "judgment": judgment})
    verdict = "relevant" if judgment.relevant else "not relevant"
    messages.success(request, f"Memory #{judgment.memory_id} judged {verdict} for search #{search.id}.")
    return redirect(next_url)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


EVAL_RUNS_PER_PAGE = 25
CHART_METRICS = (("ndcg@10", "nDCG@10"), ("recall@5", "R@5"))


@require_GET
@dashboard_view
def evaluation(request):
    runs = Paginator(EvalRun.objects.order_by("-created_at", "-id"), EVAL_RUNS_PER_PAGE).get_page(request.GET.get("page"))
    for run in runs:
        run.metric_values = [run.metrics.get(name) for name in METRICS]
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "search/evaluation.html#runs", {"runs": runs})
    latest = eval_runs_latest()
    searches = judged_search_counts()
    judged_rows = [{"strategy": name, "judged_searches": searches.get(name, 0), **values,
                    "metric_values": [values.get(metric) for metric in METRICS]}
                   for name, values in feedback_metrics().items()]
    scored = [row for row in judged_rows if row["queries"]]
    return render(request, "search/evaluation.html", {
        "runs": runs,
        "latest": latest,
        "runs_chart": bar_chart(groups=[f"{run.strategy} · {run.split}" for run in latest],
                                series=[(label, [run.metrics.get(key, 0.0) for run in latest])
                                        for key, label in CHART_METRICS]),
        "judged_rows": judged_rows,
        "judged_chart": bar_chart(groups=[row["strategy"] for row in scored],
                                  series=[(label, [row[key] for row in scored]) for key, label in CHART_METRICS]),
    })


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
            bars.append({"group": group, "series": name, "value": value, "x": label_width, "y": y, "width": width,
                         "height": bar_height, "color": CHART_COLORS[number % len(CHART_COLORS)],
                         "value_x": label_width + width + 4, "text_y": y + bar_height - 3})
            y += bar_height + gap
        y += group_gap - gap
    bottom = y - group_gap + gap
    return {
        "width": label_width + plot_width + 50, "height": bottom + 18, "top": top, "bottom": bottom,
        "label_x": label_width - 8, "bars": bars, "labels": labels,
        "ticks": [{"x": label_width + plot_width * step / 4, "text": f"{maximum * step / 4:g}"} for step in range(5)],
        "legend": [{"name": name, "color": CHART_COLORS[n % len(CHART_COLORS)], "x": label_width + n * 100}
                   for n, (name, _) in enumerate(series)],
    }


# ---------------------------------------------------------------------------------------------
# Clusters
# ---------------------------------------------------------------------------------------------


def _cluster_list_page(request, *, values=None, error="", status=200):
    context = {
        "uids": clustering.clusterable_uids(),
        "runs": clustering.cluster_run_list(),
        "values": values or {"uid": request.GET.get("uid", ""), "k": "", "k_min": 2, "k_max": 10},
        "error": error,
    }
    template = "search/clusters.html#cluster-form" if request.htmx and error else "search/clusters.html"
    return render(request, template, context, status=status)


def _whole_number(value: str, name: str, default: int | None) -> int | None:
    value = (value or "").strip()
    if not value or (name == "k" and value.lower() == "auto"):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number{' or auto' if name == 'k' else ''} (got {value!r})")


@require_GET
@dashboard_view
def cluster_list(request):
    return _cluster_list_page(request)


@require_POST
@admin_view
def cluster_run(request):
    values = {name: request.POST.get(name, "") for name in ("uid", "k", "k_min", "k_max")}
    try:
        run = clustering.cluster_run_create(
            uid=values["uid"],
            k=_whole_number(values["k"], "k", None),
            k_min=_whole_number(values["k_min"], "k_min", 2),
            k_max=_whole_number(values["k_max"], "k_max", 10),
            user=request.user,
        )
    except ValidationFailed as exc:
        return _cluster_list_page(request, values=values, error=exc.message, status=400)
    url = reverse("cluster_detail", args=[run.id])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
@dashboard_view
def cluster_detail(request, run_id: int):
    try:
        run = clustering.cluster_run_get(run_id=run_id)
    except NotFound:
        raise Http404("no such cluster run")
    context = {"run": run, **(clustering.cluster_run_result(run=run) if run.status == run.Status.DONE else {})}
    template = "search/cluster_detail.html#cluster-run" if request.htmx else "search/cluster_detail.html"
    return render(request, template, context)


# ---------------------------------------------------------------------------------------------
# Duplicates
# ---------------------------------------------------------------------------------------------


DUPLICATE_STATUSES = [("open", "Open"), ("merged", "Merged"), ("dismissed", "Dismissed"),
                      ("confirmed", "Confirmed"), ("all", "All")]


@require_GET
@dashboard_view
def duplicate_list(request):
    """The review queue: pairs (filtered by uid and status, open by default), most similar first."""
    uid, status = _pair_filters(request.GET)
    page = Paginator(_pairs(uid, status), 20).get_page(request.GET.get("page"))
    context = {
        "uid": uid,
        "status": status,
        "statuses": DUPLICATE_STATUSES,
        "page": page,
        "filters": urlencode({"uid": uid, "status": status}),
        "back": request.get_full_path(),
        "default_threshold": settings.DUPLICATE_THRESHOLD,
    }
    return render(request, "search/duplicates.html#results" if request.htmx else "search/duplicates.html", context)


@require_POST
@admin_view
def duplicate_scan(request):
    uid = request.POST.get("uid", "").strip()
    raw = request.POST.get("threshold", "").strip()
    try:
        threshold = float(raw) if raw else None
        duplicates.duplicate_scan_enqueue(uid=uid or None, threshold=threshold)
    except ValueError:
        messages.error(request, f"The threshold {raw!r} is not a number.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Duplicate scan queued for {uid or 'every user'}.")
        if uid:  # show what the scan is about: that user's open pairs
            return redirect(f"{reverse('duplicate_list')}?{urlencode({'uid': uid})}")
    return redirect(_duplicates_back(request))


@require_POST
@admin_view
def duplicate_merge(request, pair_id: int):
    keep = request.POST.get("keep", "")
    return _duplicate_resolve(
        request, pair_id,
        lambda: duplicates.duplicate_pair_merge(pair_id=pair_id, keep_id=int(keep) if keep.isdigit() else 0,
                                                user=request.user),
        done="Merged: memory {kept} kept, the other deleted.",
    )


@require_POST
@admin_view
def duplicate_dismiss(request, pair_id: int):
    return _duplicate_resolve(
        request, pair_id, lambda: duplicates.duplicate_pair_dismiss(pair_id=pair_id, user=request.user),
        done="Dismissed: these two will not be raised again.",
    )


def _duplicate_resolve(request, pair_id: int, action, *, done: str):
    """Run a merge or dismiss; HTMX gets the pair's card in its new state (or with the error),
    a plain form POST a message and a redirect back to the queue."""
    error = ""
    try:
        pair = action()
    except ApplicationError as exc:
        error = exc.message
    if request.htmx:
        try:
            pair = duplicates.duplicate_pair_get(pair_id=pair_id)
        except ApplicationError:
            raise Http404("no such pair") from None
        back = _duplicates_back(request)
        card = render_to_string("search/duplicates.html#pair", {"pair": pair, "error": error, "back": back}, request)
        # the queue's count, swapped in out of band: the pair may have left the filtered queue
        uid, status = _pair_filters(QueryDict(urlsplit(back).query))
        count = _pairs(uid, status).count()
        count_line = render_to_string("search/duplicates.html#count",
                                      {"count": count, "uid": uid, "status": status, "oob": True}, request)
        return HttpResponse(card + count_line)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done.format(kept=pair.kept_id))
    return redirect(_duplicates_back(request))


def _pair_filters(query: QueryDict) -> tuple[str, str]:
    """The queue's filters from a query string: (uid, status), open pairs by default."""
    status = query.get("status", "open")
    return query.get("uid", "").strip(), status if status in dict(DUPLICATE_STATUSES) else "open"


def _pairs(uid: str, status: str):
    return duplicates.duplicate_pair_list(uid=uid, status="" if status == "all" else status)


def _duplicates_back(request) -> str:
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return reverse("duplicate_list")
