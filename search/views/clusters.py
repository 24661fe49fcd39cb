"""The clusters pages: runs of KMeans over one user's memories, started by an admin, and one run's
clusters and map."""

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from omi_memory import charts
from omi_memory.actors import Actor
from omi_memory.dashboard import form_errors, render_page
from omi_memory.errors import ApplicationError, NotFound
from omi_memory.roles import admin_view, dashboard_view

from ..analysis import clusters
from ..forms import ClusterRunForm

RUNS_SHOWN = 100


@require_GET
@dashboard_view
def cluster_list(request):
    form = ClusterRunForm(initial={"uid": request.GET.get("uid", "")})  # /clusters/?uid=... picks a user
    return render(request, "search/clusters.html", _cluster_list_context(form))


@require_POST
@admin_view
def cluster_run(request):
    form = ClusterRunForm(request.POST)
    if form.is_valid():
        try:
            run = clusters.cluster_run_create(**form.run_kwargs(), actor=Actor.from_request(request))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            url = reverse("cluster_detail", args=[run.id])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {**_cluster_list_context(form), "error": form_errors(form)}
    return render_page(request, "search/clusters.html", context, partial="cluster-form", status=400)


def _cluster_list_context(form: ClusterRunForm) -> dict:
    return {"form": form, "uids": clusters.clusterable_uids(), "runs": clusters.cluster_run_list()[:RUNS_SHOWN]}


@require_GET
@dashboard_view
def cluster_detail(request, run_id: int):
    try:
        run = clusters.cluster_run_get(run_id=run_id)
    except NotFound:
        raise Http404("no such cluster run") from None
    context = {"run": run}
    if run.status == run.Status.DONE:
        context.update(_coloured(run, clusters.cluster_run_result(run=run)))
    return render_page(request, "search/cluster_detail.html", context, partial="cluster-run")


def _coloured(run, result: dict) -> dict:
    """A finished run's clusters, each in its colour, and its map: every memory a point in its
    cluster's colour, linking to the memory."""
    cluster_map = charts.scatter(
        title=f"The memories of {run.uid} projected on two dimensions, coloured by cluster",
        points=[_map_point(point) for point in result["points"]],
        x_title="first principal component",
        y_title="second principal component",
    )
    coloured = [
        {**cluster, "colour": charts.colour(cluster["index"]), "palette_class": charts.palette_class(cluster["index"])}
        for cluster in result["clusters"]
    ]
    return {**result, "clusters": coloured, "cluster_map": cluster_map}


def _map_point(point: dict) -> charts.Point:
    memory = point["memory"]
    return charts.Point(
        x=point["x"],
        y=point["y"],
        colour=charts.colour(point["cluster"]),
        title=f"{memory.emoji} {memory.title or '(untitled)'} · {timezone.localtime(memory.created_at):%Y-%m-%d}",
        href=reverse("memory_detail", args=[memory.id]),
        id=f"point-{memory.id}",
    )
