"""The webhooks page (admins only): endpoints, a new one (its secret shown once), and each
endpoint's delivery log, with enable / disable, a new secret and delete. Thin views over
`webhooks.selectors` / `webhooks.services`."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from omi_memory.actors import Actor
from omi_memory.dashboard import PageForm, render_page
from omi_memory.errors import ApplicationError, NotFound
from omi_memory.roles import admin_view

from . import selectors, services
from .forms import DeliveryFilterForm, EnableForm, WebhookEndpointForm

PER_PAGE = 50


def _endpoint_or_404(endpoint_id: int):
    try:
        return selectors.webhook_endpoint_get(endpoint_id=endpoint_id)
    except NotFound as error:
        raise Http404(str(error)) from error


def _list_page(request, form: WebhookEndpointForm, *, created=None, status: int = 200):
    pages = PageForm(request.GET)
    pages.is_valid()
    context = {
        "form": form,
        "page": pages.page_of(selectors.webhook_endpoint_list(), PER_PAGE),
        "created": created,
        "disable_after": settings.WEBHOOKS_DISABLE_AFTER_FAILURES,
    }
    response = render_page(request, "webhooks/webhooks.html", context, partial="endpoints", status=status)
    add_never_cache_headers(response)  # a new secret is shown once: no cache may keep the page
    return response


@require_GET
@admin_view
def webhook_list(request):
    return _list_page(request, WebhookEndpointForm())


@require_POST
@admin_view
def webhook_create(request):
    """A new endpoint; its secret is shown once, on the page this answers."""
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint = services.webhook_endpoint_create(**form.create_kwargs(), actor=Actor.from_request(request))
        except ApplicationError as error:
            field = (error.details or {}).get("field") if isinstance(error.details, dict) else None
            form.add_error(field if field in form.fields else None, error.message)
        else:
            return _list_page(request, WebhookEndpointForm(), created=endpoint)
    return _list_page(request, form, status=400)


def _detail_page(request, endpoint, *, secret: str = ""):
    form = DeliveryFilterForm(request.GET)
    form.is_valid()
    deliveries = selectors.webhook_delivery_list(endpoint=endpoint, status=form.cleaned_data.get("status") or None)
    context = {"endpoint": endpoint, "form": form, "page": form.page_of(deliveries, PER_PAGE), "secret": secret}
    response = render_page(request, "webhooks/webhook_detail.html", context, partial="deliveries")
    add_never_cache_headers(response)
    return response


@require_GET
@admin_view
def webhook_detail(request, endpoint_id: int):
    return _detail_page(request, _endpoint_or_404(endpoint_id))


@require_POST
@admin_view
def webhook_enable(request, endpoint_id: int):
    """Enable (its failures counted from 0 again) or disable an endpoint."""
    endpoint = _endpoint_or_404(endpoint_id)
    form = EnableForm(request.POST)
    form.is_valid()
    enabled = form.cleaned_data["enabled"]
    services.webhook_endpoint_update(endpoint=endpoint, enabled=enabled, actor=Actor.from_request(request))
    messages.success(request, f"Webhook #{endpoint.id} is {'enabled' if enabled else 'disabled'}.")
    return redirect("webhook_detail", endpoint_id=endpoint.id)


@require_POST
@admin_view
def webhook_secret(request, endpoint_id: int):
    """A new secret, shown once on the page this answers; the old one stops signing at once."""
    endpoint = _endpoint_or_404(endpoint_id)
    endpoint = services.webhook_endpoint_update(endpoint=endpoint, new_secret=True, actor=Actor.from_request(request))
    return _detail_page(request, endpoint, secret=endpoint.secret)


@require_POST
@admin_view
def webhook_delete(request, endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    services.webhook_endpoint_delete(endpoint=endpoint, actor=Actor.from_request(request))
    messages.success(request, f"Webhook #{endpoint_id} ({endpoint.url}) was deleted.")
    return redirect("webhook_list")
