"""Dashboard pages about search: search and judge, evaluation, clusters, duplicates.

Thin views over `search.services` / `search.selectors`; roles from `omi_memory.roles`.
"""

from django.http import Http404
from django.views.decorators.http import require_GET, require_POST

from omi_memory.roles import admin_view, dashboard_view

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


@require_GET
@dashboard_view
def cluster_list(request):
    raise Http404("not built yet")


@require_POST
@admin_view
def cluster_run(request):
    raise Http404("not built yet")


@require_GET
@dashboard_view
def cluster_detail(request, run_id: int):
    raise Http404("not built yet")


# ---------------------------------------------------------------------------------------------
# Duplicates
# ---------------------------------------------------------------------------------------------


@require_GET
@dashboard_view
def duplicate_list(request):
    raise Http404("not built yet")


@require_POST
@admin_view
def duplicate_scan(request):
    raise Http404("not built yet")


@require_POST
@admin_view
def duplicate_merge(request, pair_id: int):
    raise Http404("not built yet")


@require_POST
@admin_view
def duplicate_dismiss(request, pair_id: int):
    raise Http404("not built yet")
