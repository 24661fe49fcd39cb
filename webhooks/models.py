"""Webhooks: the endpoints admins register, the events they are sent, and each delivery's log.

An event is recorded once (its body is the same for every endpoint and every attempt); a delivery
is one event to one endpoint, with its attempts, the last answer and error, and its state.
"""

import uuid

from django.db import models
from django.utils import timezone


class EventType(models.TextChoices):
    MEMORY_INDEXED = "memory.indexed", "a memory was indexed (searchable)"
    MEMORY_FAILED = "memory.failed", "a memory failed in the pipeline"
    MEMORY_DELETED = "memory.deleted", "a memory was deleted (also merged away, or its user erased)"
    DUPLICATE_FOUND = "duplicate.found", "a new duplicate pair was found"


class WebhookEndpoint(models.Model):
    """A URL that receives the events it subscribes to, signed with its secret. `uid` empty: the
    events of every user. Disabled by an admin, or by itself after WEBHOOKS_DISABLE_AFTER_FAILURES
    failed attempts in a row (`disabled_reason` says which); an admin enables it again."""

    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)  # EventType values
    uid = models.CharField(max_length=128, blank=True)
    secret = models.CharField(max_length=200)  # needed to sign each body: kept as it is, never shown again
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.events)})"

    @property
    def secret_hint(self) -> str:
        return f"{self.secret[:10]}…"

    @property
    def state(self) -> str:
        return "active" if self.enabled else "disabled"


class WebhookEvent(models.Model):
    """Something that happened, as every endpoint subscribed to it is sent it (`data`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32, choices=EventType.choices)
    uid = models.CharField(max_length=128, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending (to be tried, or tried again at `next_attempt_at`),
    delivered (a 2xx answer) or failed (WEBHOOKS_MAX_ATTEMPTS attempts, or its endpoint disabled)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)  # the last answer's HTTP status
    last_error = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # pending: when it is (to be) tried
    delivered_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)  # an attempt under way holds it until then

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to endpoint {self.endpoint_id}: {self.status}"
