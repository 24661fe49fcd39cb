"""Reads of webhooks: endpoints and their delivery logs (admins only: every user's)."""

from django.db.models import QuerySet

from omi_memory.errors import NotFound

from .models import WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("-created_at", "-id")


def webhook_subscribers(*, type: str) -> list[WebhookEndpoint]:
    """The enabled endpoints that receive events of this type (for every user, or for one)."""
    return [e for e in WebhookEndpoint.objects.filter(enabled=True) if type in e.events]


def webhook_subscribed(*, type: str) -> bool:
    return bool(webhook_subscribers(type=type))


def webhook_endpoint_get(*, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(id=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def webhook_delivery_list(*, endpoint: WebhookEndpoint, status: str | None = None) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event")
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-created_at", "-id")
