"""Dashboard pages about search: search and judge, evaluation, clusters, duplicates.

Thin views over `search.services` / `search.selectors`; roles from `omi_memory.roles`.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from omi_memory.errors import ApplicationError, NotFound, ValidationFailed
from omi_memory.roles import admin_view, dashboard_view

from . import clustering, duplicates

# ---------------------------------------------------------------------------------------------
# Search and judging
# ---------------------------------------------------------------------------------------------


@require_GET
@dashboard_view
def search_page(request):
    raise Http404("not built yet")


@require_POST
@dashboard_view
def search_judge(request):
    raise Http404("not built yet")


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@require_GET
@dashboard_view
def evaluation(request):
    raise Http404("not built yet")


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
    uid = request.GET.get("uid", "").strip()
    status = request.GET.get("status", "open")
    if status not in dict(DUPLICATE_STATUSES):
        status = "open"
    pairs = duplicates.duplicate_pair_list(uid=uid, status="" if status == "all" else status)
    page = Paginator(pairs, 20).get_page(request.GET.get("page"))
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
        context = {"pair": pair, "error": error, "back": _duplicates_back(request)}
        return render(request, "search/duplicates.html#pair", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done.format(kept=pair.kept_id))
    return redirect(_duplicates_back(request))


def _duplicates_back(request) -> str:
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return reverse("duplicate_list")
