"""Dashboard pages about memories: the list, one memory, the pipeline.

Thin views over `memories.selectors` / `memories.services`; roles from `omi_memory.roles`.
"""

from django.http import Http404
from django.views.decorators.http import require_GET, require_POST

from omi_memory.roles import admin_view, dashboard_view


@require_GET
@dashboard_view
def memory_list(request):
    raise Http404("not built yet")


@require_GET
@dashboard_view
def memory_detail(request, memory_id: int):
    raise Http404("not built yet")


@require_POST
@admin_view
def memory_reprocess(request, memory_id: int):
    raise Http404("not built yet")


@require_POST
@admin_view
def memory_delete(request, memory_id: int):
    raise Http404("not built yet")


@require_GET
@dashboard_view
def pipeline(request):
    raise Http404("not built yet")


@require_POST
@admin_view
def pipeline_retry(request):
    raise Http404("not built yet")
