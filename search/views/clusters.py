"""The clusters pages: runs of KMeans over one user's memories, started by an admin, and one run's
clusters and map."""

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from omi_memory.errors import NotFound, ValidationFailed
from omi_memory.roles import admin_view, dashboard_view

from ..analysis import clusters


def _cluster_list_page(request, *, values=None, error="", status=200):
    context = {
        "uids": clusters.clusterable_uids(),
        "runs": clusters.cluster_run_list(),
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
        raise ValidationFailed(
            f"{name} must be a whole number{' or auto' if name == 'k' else ''} (got {value!r})"
        ) from None


@require_GET
@dashboard_view
def cluster_list(request):
    return _cluster_list_page(request)


@require_POST
@admin_view
def cluster_run(request):
    values = {name: request.POST.get(name, "") for name in ("uid", "k", "k_min", "k_max")}
    try:
        run = clusters.cluster_run_create(
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
        run = clusters.cluster_run_get(run_id=run_id)
    except NotFound:
        raise Http404("no such cluster run") from None
    context = {"run": run, **(clusters.cluster_run_result(run=run) if run.status == run.Status.DONE else {})}
    template = "search/cluster_detail.html#cluster-run" if request.htmx else "search/cluster_detail.html"
    return render(request, template, context)
