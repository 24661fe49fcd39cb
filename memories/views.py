"""Dashboard pages about memories: the list, one memory, the pipeline; API keys and the audit
trail (admins only).

Thin views over `memories.selectors` / `memories.services`; roles from `omi_memory.roles`.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from omi_memory import charts
from omi_memory.actors import Actor
from omi_memory.dashboard import PageForm, form_errors, render_page, vary_on_htmx, wants_partial
from omi_memory.errors import ApplicationError, Conflict, NotFound
from omi_memory.roles import admin_view, dashboard_view

from . import reconcile, selectors, services
from .forms import (
    ApiKeyCreateForm,
    ApiKeyExpireForm,
    AuditFilterForm,
    MemoryFilterForm,
    MemoryPartForm,
    PipelineRetryForm,
    ReconcileForm,
    VectorLookupForm,
)
from .models import Memory

PAGE_SIZE = 25


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
    context = {
        "form": form,
        "page": form.page_of(memories, PAGE_SIZE),
        "sort": form.cleaned_data.get("sort") or "-created",
    }
    return render_page(
        request,
        "memories/memory_list.html",
        context,
        partial="results",
        whole=lambda: {"uids": selectors.memory_uids()},
    )


@require_GET
@dashboard_view
def memory_detail(request, memory_id: int):
    memory = _memory_or_404(memory_id)
    form = MemoryPartForm(request.GET)
    if form.is_valid() and form.cleaned_data["part"] == "status" and wants_partial(request):
        response = render(request, "memories/memory_detail.html#status", {"memory": memory})
        if memory.status not in (Memory.Status.QUEUED, Memory.Status.PROCESSING):
            response["HX-Refresh"] = "true"  # the work is done: show the new title, vectors, ...
        return vary_on_htmx(response)
    context = {
        "memory": memory,
        "vectors": selectors.memory_vector_summary(memory=memory),
        "neighbours": selectors.memory_neighbours(memory=memory, k=5),
    }
    return vary_on_htmx(render(request, "memories/memory_detail.html", context))


@require_POST
@admin_view
def memory_reprocess(request, memory_id: int):
    memory = _memory_or_404(memory_id)
    try:
        memory = services.memory_reprocess(memory=memory, actor=Actor.from_request(request))
        messages.success(request, f"Memory #{memory.id} is queued to be processed again.")
    except Conflict as error:
        messages.error(request, str(error))
    if wants_partial(request):
        return render(request, "memories/memory_detail.html#status", {"memory": memory})
    return redirect("memory_detail", memory_id=memory.id)


@require_POST
@admin_view
def memory_delete(request, memory_id: int):
    memory = _memory_or_404(memory_id)
    if memory.status != Memory.Status.DELETED:
        services.memory_delete(memory=memory, actor=Actor.from_request(request))
        messages.success(request, f"Memory #{memory.id} ({memory.title or 'untitled'}) was deleted.")
    return redirect("memory_list")


def _pipeline_context() -> dict:
    """The pipeline's figures, and the last hour's 5-minute buckets as columns (oldest first)."""
    stats = selectors.pipeline_stats()
    last_hour = charts.columns(
        title="memories indexed per 5 minutes over the last hour",
        values=stats["buckets"],
        labels=[f"{60 - 5 * i} to {55 - 5 * i} min ago" for i in range(len(stats["buckets"]))],
        edges=[*(str(60 - 5 * i) for i in range(len(stats["buckets"]))), "now"],
        x_title="minutes ago",
        y_title="indexed",
    )
    runs = selectors.reconcile_runs_latest()
    return {"stats": stats, "last_hour": last_hour, "reconcile": runs, "busy": stats["busy"] or runs["current"]}


@require_GET
@dashboard_view
def pipeline(request):
    return render_page(request, "memories/pipeline.html", _pipeline_context(), partial="stats")


@require_POST
@admin_view
def pipeline_retry(request):
    form = PipelineRetryForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return redirect("pipeline")
    memory_id = form.cleaned_data["memory_id"]
    queued = services.memory_retry_failed(
        memory_ids=[memory_id] if memory_id else None, actor=Actor.from_request(request)
    )
    if memory_id and not queued:
        messages.error(request, f"Memory #{memory_id} is not failed; nothing to retry.")
    else:
        messages.success(request, f"{queued} failed {'memory' if queued == 1 else 'memories'} queued again.")
    if wants_partial(request):
        return render(request, "memories/pipeline.html#stats", _pipeline_context())
    return redirect("pipeline")


@require_POST
@admin_view
def pipeline_reconcile(request):
    """Start a reconciliation of the database's vectors with the store (done by a task)."""
    form = ReconcileForm(request.POST)
    form.is_valid()  # one optional checkbox: always valid
    try:
        run = reconcile.reconcile_run_start(repair=form.cleaned_data["repair"], actor=Actor.from_request(request))
        repairing = " and repair" if run.repair else ""
        messages.success(request, f"Reconciliation #{run.id} started: it will compare{repairing} every user's vectors.")
    except Conflict as error:
        messages.error(request, error.message)
    if wants_partial(request):
        return render(request, "memories/pipeline.html#stats", _pipeline_context())
    return redirect("pipeline")


# API keys and the audit trail (admins only)

KEYS_PER_PAGE = 50
AUDIT_PER_PAGE = 50


def _key_or_404(key_id: int):
    try:
        return selectors.api_key_get(key_id=key_id)
    except NotFound as error:
        raise Http404(str(error)) from error


def _api_keys_page(request, form: ApiKeyCreateForm, *, created=None, raw_key: str = "", status: int = 200):
    pages = PageForm(request.GET)
    pages.is_valid()
    context = {
        "form": form,
        "page": pages.page_of(selectors.api_key_list(), KEYS_PER_PAGE),
        "created": created,
        "raw_key": raw_key,
    }
    response = render_page(request, "memories/api_keys.html", context, partial="keys", status=status)
    add_never_cache_headers(response)  # a new key is shown once: no cache may keep the page
    return response


@require_GET
@admin_view
def api_key_list(request):
    return _api_keys_page(request, ApiKeyCreateForm())


@require_POST
@admin_view
def api_key_create(request):
    """A new key, shown once on the page this answers (never stored, never in a message or URL)."""
    form = ApiKeyCreateForm(request.POST)
    if form.is_valid():
        try:
            key, raw = services.api_key_create(**form.create_kwargs(), actor=Actor.from_request(request))
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            return _api_keys_page(request, ApiKeyCreateForm(), created=key, raw_key=raw)
    return _api_keys_page(request, form, status=400)


@require_POST
@admin_view
def api_key_revoke(request, key_id: int):
    key = _key_or_404(key_id)
    try:
        services.api_key_revoke(key=key, actor=Actor.from_request(request))
        messages.success(request, f"API key {key.prefix}… ({key.name}) is revoked: requests with it get 401.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("api_key_list")


@require_POST
@admin_view
def api_key_expire(request, key_id: int):
    key = _key_or_404(key_id)
    form = ApiKeyExpireForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return redirect("api_key_list")
    try:
        key = services.api_key_expire(key=key, expires_at=form.expires_at(), actor=Actor.from_request(request))
        messages.success(request, f"API key {key.prefix}… ({key.name}) expires {key.expires_at:%Y-%m-%d %H:%M} UTC.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("api_key_list")


@require_GET
@admin_view
def audit_list(request):
    form = AuditFilterForm(request.GET)
    form.is_valid()
    context = {
        "form": form,
        "page": form.page_of(selectors.audit_event_list(**form.selector_filters()), AUDIT_PER_PAGE),
    }
    return render_page(
        request,
        "memories/audit.html",
        context,
        partial="results",
        whole=lambda: {"actors": selectors.audit_actor_names()},
    )


@require_GET
@admin_view
def vector_index(request):
    """The index view: the vector store's figures, and one memory's vectors and their neighbours."""
    form = VectorLookupForm(request.GET)
    context = {"form": form, **selectors.vector_index_overview()}
    if form.is_valid() and form.cleaned_data["memory"]:
        try:
            memory = selectors.memory_get(memory_id=form.cleaned_data["memory"], include_deleted=True)
        except NotFound:
            form.add_error("memory", f"There is no memory #{form.cleaned_data['memory']}.")
        else:
            context["lookup"] = selectors.memory_vector_lookup(memory=memory, vector_id=form.cleaned_data["vector"])
    return render(request, "memories/vector_index.html", context)
