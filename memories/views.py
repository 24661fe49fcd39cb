"""Dashboard pages about memories: the list, one memory, the pipeline.

Thin views over `memories.selectors` / `memories.services`; roles from `omi_memory.roles`.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from omi_memory.errors import Conflict, NotFound
from omi_memory.roles import admin_view, dashboard_view

from . import selectors, services
from .forms import MemoryFilterForm
from .models import Memory
from .selectors import memory_neighbours, memory_vector_summary

PAGE_SIZE = 25


def _partial(request) -> bool:
    """An htmx request for part of the page (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _memory_or_404(memory_id: int) -> Memory:
    try:
        return selectors.memory_get(memory_id=memory_id, include_deleted=True)
    except NotFound as error:
        raise Http404(str(error)) from error


@require_GET
@dashboard_view
def memory_list(request):
    form = MemoryFilterForm(request.GET)
    form.is_valid()
    memories = selectors.memory_list(**form.selector_filters()).order_by(form.ordering(), "-id")
    page = Paginator(memories, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "sort": form.cleaned_data.get("sort") or "-created"}
    if _partial(request):
        return render(request, "memories/memory_list.html#results", context)
    return render(request, "memories/memory_list.html", {**context, "uids": selectors.memory_uids()})


@require_GET
@dashboard_view
def memory_detail(request, memory_id: int):
    memory = _memory_or_404(memory_id)
    if _partial(request) and request.GET.get("part") == "status":
        response = render(request, "memories/memory_detail.html#status", {"memory": memory})
        if memory.status not in (Memory.Status.QUEUED, Memory.Status.PROCESSING):
            response["HX-Refresh"] = "true"  # the work is done: show the new title, vectors, ...
        return response
    context = {
        "memory": memory,
        "vectors": memory_vector_summary(memory=memory),
        "neighbours": memory_neighbours(memory=memory, k=5),
    }
    return render(request, "memories/memory_detail.html", context)


@require_POST
@admin_view
def memory_reprocess(request, memory_id: int):
    memory = _memory_or_404(memory_id)
    try:
        memory = services.memory_reprocess(memory=memory)
        messages.success(request, f"Memory #{memory.id} is queued to be processed again.")
    except Conflict as error:
        messages.error(request, str(error))
    if _partial(request):
        return render(request, "memories/memory_detail.html#status", {"memory": memory})
    return redirect("memory_detail", memory_id=memory.id)


@require_POST
@admin_view
def memory_delete(request, memory_id: int):
    memory = _memory_or_404(memory_id)
    if memory.status != Memory.Status.DELETED:
        services.memory_delete(memory=memory)
        messages.success(request, f"Memory #{memory.id} ({memory.title or 'untitled'}) was deleted.")
    return redirect("memory_list")


def _pipeline_context() -> dict:
    stats = selectors.pipeline_stats()
    tallest = max(stats["buckets"]) or 1
    stats["bars"] = [
        {
            "x": 4 + i * 50,
            "y": 75 - round(70 * count / tallest),
            "height": round(70 * count / tallest),
            "count": count,
            "label": f"{60 - 5 * i} to {55 - 5 * i} min ago",
        }
        for i, count in enumerate(stats["buckets"])
    ]
    return {"stats": stats}


@require_GET
@dashboard_view
def pipeline(request):
    context = _pipeline_context()
    template = "memories/pipeline.html#stats" if _partial(request) else "memories/pipeline.html"
    return render(request, template, context)


@require_POST
@admin_view
def pipeline_retry(request):
    memory_id = request.POST.get("memory_id")
    if memory_id is not None and not memory_id.isdigit():
        messages.error(request, "memory_id must be a number.")
        return redirect("pipeline")
    queued = services.memory_retry_failed(memory_ids=[int(memory_id)] if memory_id else None)
    if memory_id and not queued:
        messages.error(request, f"Memory #{memory_id} is not failed; nothing to retry.")
    else:
        messages.success(request, f"{queued} failed {'memory' if queued == 1 else 'memories'} queued again.")
    if _partial(request):
        return render(request, "memories/pipeline.html#stats", _pipeline_context())
    return redirect("pipeline")
