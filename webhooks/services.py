"""Webhooks: endpoints (create, change, delete; audited), events recorded for the endpoints that
subscribe to them, and each delivery attempt (signed POST, retries with backoff, auto-disable).

Events come from the other apps' signals (`apps.py`): `memories` says a memory was indexed, failed
or deleted, `search` that a duplicate pair was found; neither knows webhooks exist. An event is
recorded with one delivery per subscribed endpoint in the transaction of what happened (or its own),
and each delivery is sent to the task `deliver_webhook` once that commits.
"""

import functools
import json
import logging
import random
import re
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from memories.models import UID_PATTERN, AuditEvent
from memories.services import audit_record
from omi_memory import bounds
from omi_memory.actors import USER, Actor
from omi_memory.errors import ValidationFailed
from omi_memory.metrics import WEBHOOK_ATTEMPTS

from . import addresses, signing
from .models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent
from .selectors import webhook_subscribers

logger = logging.getLogger(__name__)
Delivery = WebhookDelivery.Status
USER_AGENT = "omi-memory-webhooks/1"
ERROR_CHARS = 1000


# Endpoints


def _clean(**given) -> dict:
    """The given fields of an endpoint (`url`, `events`, `uid`, `description`, `secret`), checked
    (ValidationFailed names the field). A URL's host is resolved and refused when it is not public
    (unless WEBHOOKS_ALLOW_PRIVATE)."""
    fields = {}
    for name, value in given.items():
        if isinstance(value, str) and (problem := bounds.text_problem(value)):
            raise ValidationFailed(f"{name} {problem}", details={"field": name})
    if "url" in given:
        url = (given["url"] or "").strip()
        if not url or len(url) > WebhookEndpoint._meta.get_field("url").max_length:
            raise ValidationFailed("url must have 1 to 2000 characters", details={"field": "url"})
        try:
            addresses.checked_target(url)
        except addresses.AddressRefused as exc:
            raise ValidationFailed(f"url refused: {exc}", details={"field": "url"}) from None
        fields["url"] = url
    if "events" in given:
        events = list(given["events"] or [])
        unknown = [str(event) for event in events if event not in EventType.values]
        if not events or unknown:
            raise ValidationFailed(
                f"events must name at least one of {', '.join(EventType.values)}"
                + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
                details={"field": "events", "allowed": EventType.values},
            )
        fields["events"] = [event for event in EventType.values if event in events]
    if "uid" in given:
        uid = (given["uid"] or "").strip()
        if uid and not re.fullmatch(UID_PATTERN, uid):
            raise ValidationFailed(f"uid {uid!r} is not a valid user id", details={"field": "uid"})
        fields["uid"] = uid
    if "description" in given:
        description = (given["description"] or "").strip()
        if len(description) > WebhookEndpoint._meta.get_field("description").max_length:
            raise ValidationFailed("description is longer than 200 characters", details={"field": "description"})
        fields["description"] = description
    if given.get("secret") is not None:
        secret, (low, high) = given["secret"], signing.SECRET_LENGTH
        if not low <= len(secret) <= high or not secret.isprintable() or secret.strip() != secret:
            raise ValidationFailed(
                f"secret must have {low} to {high} printable characters, no spaces at either end",
                details={"field": "secret"},
            )
        fields["secret"] = secret
    return fields


def webhook_endpoint_create(
    *, url: str, events: list[str], uid: str = "", description: str = "", secret: str | None = None, actor: Actor
) -> WebhookEndpoint:
    """Register an endpoint; its secret is the one given, or a new one (`endpoint.secret`, to show once)."""
    fields = _clean(url=url, events=events, uid=uid, description=description, secret=secret or None)
    fields.setdefault("secret", signing.new_secret())
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(**fields, created_by=actor.name if actor.kind == USER else actor.kind)
        _audit(actor, AuditEvent.Action.WEBHOOK_CREATE, endpoint, {"secret": "given" if secret else "generated"})
    return endpoint


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: Actor,
    enabled: bool | None = None,
    new_secret: bool = False,
    **given,
) -> WebhookEndpoint:
    """Change an endpoint: the fields given (`url`, `events`, `uid`, `description`, `secret`; None
    leaves one as it is). `enabled=True` enables a disabled endpoint again, its count of failed
    attempts back at 0; `new_secret` makes a new secret (`endpoint.secret`, to show once)."""
    given = {name: value for name, value in given.items() if value is not None}
    if new_secret and given.get("secret"):
        raise ValidationFailed("give a secret or ask for a new one, not both", details={"field": "secret"})
    if given.get("url", endpoint.url) == endpoint.url:
        given.pop("url", None)  # resolved again only when it changes
    fields = _clean(**given)
    if new_secret:
        fields["secret"] = signing.new_secret()
    changed = {name for name, value in fields.items() if getattr(endpoint, name) != value}
    if enabled is not None and enabled != endpoint.enabled:
        changed.add("enabled")
        fields.update(
            enabled=enabled,
            disabled_at=None if enabled else timezone.now(),
            disabled_reason="" if enabled else f"disabled by {actor.name}"[:500],
            consecutive_failures=0,
        )
    with transaction.atomic():
        for name, value in fields.items():
            setattr(endpoint, name, value)
        endpoint.save()
        details = {"changed": sorted(changed), **({"enabled": endpoint.enabled} if "enabled" in changed else {})}
        _audit(actor, AuditEvent.Action.WEBHOOK_UPDATE, endpoint, details)
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """Delete an endpoint and its delivery log; nothing more is sent to it."""
    with transaction.atomic():
        _audit(actor, AuditEvent.Action.WEBHOOK_DELETE, endpoint, {})
        endpoint.delete()


def _audit(actor: Actor, action: str, endpoint: WebhookEndpoint, details: dict) -> None:
    details = {"url": endpoint.url, "events": endpoint.events, "scope": endpoint.uid or "all users", **details}
    audit_record(
        actor=actor, action=action, uid=endpoint.uid, target_type="webhook", target_ids=[endpoint.id], details=details
    )


# Events


def webhook_events_record(*, type: str, items: list[tuple[str, dict]]) -> list[WebhookDelivery]:
    """Record events of one type (`items`: each event's uid and data) for the enabled endpoints
    that subscribe to it (for all users, or for the event's uid), and send each delivery once the
    transaction commits. Never raises: what happened stands whatever becomes of its webhooks."""
    try:
        with transaction.atomic():  # a savepoint inside the caller's transaction
            return _record(type, items)
    except Exception:  # noqa: BLE001 - logged; the memory's own change must not fail for a webhook
        logger.exception("could not record %d %s webhook events", len(items), type)
        return []


def _record(type: str, items: list[tuple[str, dict]]) -> list[WebhookDelivery]:
    endpoints = webhook_subscribers(type=type)
    if not endpoints or not items:
        return []
    now = timezone.now()
    events, deliveries = [], []
    for uid, data in items:
        receivers = [e for e in endpoints if e.uid in ("", uid)]
        if receivers:
            events.append(WebhookEvent(type=type, uid=uid, data=data, created_at=now))  # its id made here
            deliveries += [
                WebhookDelivery(endpoint=e, event=events[-1], next_attempt_at=now, created_at=now) for e in receivers
            ]
    WebhookEvent.objects.bulk_create(events)
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [d.id for d in deliveries]
    if ids:
        transaction.on_commit(partial(_enqueue, ids))
    return deliveries


def _enqueue(delivery_ids: list[int]) -> None:
    """Send each delivery to the task queue; one that cannot be sent stays pending for the sweep."""
    from .tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception as exc:  # noqa: BLE001 - the broker is down: webhook_sweep sends it later
            logger.warning("webhook delivery %s not queued (%s); the sweep will send it", delivery_id, exc)
            return


def event_body(event: WebhookEvent) -> bytes:
    """What is POSTed: the same bytes for every endpoint and attempt."""
    payload = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "uid": event.uid,
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# Delivery


def retry_delay(attempts: int) -> float:
    """Seconds before the attempt after the `attempts`-th: WEBHOOKS_RETRY_BACKOFF_SECONDS doubled
    each time, plus up to a quarter of it at random, at most WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS."""
    base = settings.WEBHOOKS_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1)
    return min(base * (1 + random.random() / 4), settings.WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS)


class SendFailed(Exception):
    pass


def _post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    """POST to the checked address of the URL (resolved now: DNS rebinding), redirects not followed,
    no proxy from the environment. Returns the status and the start of the answer's body."""
    import httpx

    try:
        target = addresses.checked_target(url)
    except addresses.AddressRefused as exc:
        raise SendFailed(f"refused: {exc}") from None
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        with httpx.Client(
            timeout=settings.WEBHOOKS_TIMEOUT, follow_redirects=False, trust_env=False, verify=_tls_context()
        ) as client:
            request = client.build_request(
                "POST",
                target.pinned_url,
                content=body,
                headers={**headers, "Host": target.host_header},
                extensions=extensions,
            )
            response = client.send(request, stream=True)
            try:
                start = b""
                for chunk in response.iter_bytes():
                    start += chunk
                    if len(start) >= 200:
                        break
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from None
    return response.status_code, start[:200].decode(errors="replace")


@functools.cache
def _tls_context():
    """The certificates every delivery checks, loaded once per process (not at each attempt)."""
    import httpx

    return httpx.create_ssl_context()


def webhook_delivery_attempt(*, delivery_id: int) -> float | None:
    """One attempt of a pending delivery: claim it (an attempt under way holds it), POST the signed
    body, record the answer. Returns the seconds to wait before the next attempt, or None when
    there is none (delivered, failed for good, or not ours to try)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT + 60)
    claimed = (
        WebhookDelivery.objects.filter(id=delivery_id, status=Delivery.PENDING)
        .filter(Q(lease_until=None) | Q(lease_until__lt=now))
        .update(lease_until=lease, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(id=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        _finish(delivery, Delivery.FAILED, error="not sent: the endpoint is disabled", attempts_taken_back=True)
        return None
    body = event_body(delivery.event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Omi-Event": delivery.event.type,
        "X-Omi-Event-Id": str(delivery.event.id),
        "X-Omi-Delivery": str(delivery.id),
        signing.HEADER: signing.signature_header(endpoint.secret, timestamp, body),
    }
    try:
        status, answer = _post(endpoint.url, body, headers)
        error = "" if 200 <= status < 300 else f"HTTP {status}" + (f": {answer}" if answer else "")
    except SendFailed as exc:
        status, error = None, str(exc)
    WEBHOOK_ATTEMPTS.labels(delivery.event.type, "failed" if error else "delivered").inc()
    if not error:
        _finish(delivery, Delivery.DELIVERED, response_status=status)
        WebhookEndpoint.objects.filter(id=endpoint.id).update(consecutive_failures=0, last_success_at=timezone.now())
        return None
    enabled = _endpoint_failed(endpoint, error)
    if enabled and delivery.attempts < settings.WEBHOOKS_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        _finish(delivery, Delivery.PENDING, response_status=status, error=error, next_in=delay)
        return delay
    _finish(delivery, Delivery.FAILED, response_status=status, error=error)
    return None


def _finish(
    delivery: WebhookDelivery,
    status: str,
    *,
    response_status: int | None = None,
    error: str = "",
    next_in: float | None = None,
    attempts_taken_back: bool = False,
) -> None:
    now = timezone.now()
    fields = {
        "status": status,
        "last_error": error[:ERROR_CHARS],
        "lease_until": None,
        "next_attempt_at": now + timedelta(seconds=next_in) if next_in is not None else None,
    }
    if not attempts_taken_back:
        fields["response_status"] = response_status
    else:
        fields["attempts"] = F("attempts") - 1  # nothing was sent
    if status == Delivery.DELIVERED:
        fields["delivered_at"] = now
    WebhookDelivery.objects.filter(id=delivery.id).update(**fields)
    logger.info("webhook delivery %s (attempt %d): %s %s", delivery.id, delivery.attempts, status, error)


def _endpoint_failed(endpoint: WebhookEndpoint, error: str) -> bool:
    """Count a failed attempt on the endpoint; disable it at WEBHOOKS_DISABLE_AFTER_FAILURES in a
    row. Returns whether it is still enabled."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(id=endpoint.id).update(
            consecutive_failures=F("consecutive_failures") + 1, last_failure_at=timezone.now()
        )
        limit = settings.WEBHOOKS_DISABLE_AFTER_FAILURES
        disabled = WebhookEndpoint.objects.filter(id=endpoint.id, enabled=True, consecutive_failures__gte=limit).update(
            enabled=False,
            disabled_at=timezone.now(),
            disabled_reason=f"disabled after {limit} failed attempts in a row; the last: {error}"[:500],
        )
    if disabled:
        logger.warning("webhook endpoint %s (%s) disabled after %d failed attempts", endpoint.id, endpoint.url, limit)
    return WebhookEndpoint.objects.filter(id=endpoint.id, enabled=True).exists()


def webhook_sweep(*, limit: int = 1000) -> int:
    """Send again the pending deliveries whose message was lost (due for WEBHOOKS_SWEEP_AFTER_SECONDS
    and not held by an attempt); the number sent. Run by Celery beat with the pipeline's sweep."""
    now = timezone.now()
    due = now - timedelta(seconds=settings.WEBHOOKS_SWEEP_AFTER_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(status=Delivery.PENDING, next_attempt_at__lt=due)
        .filter(Q(lease_until=None) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    if ids:
        WebhookDelivery.objects.filter(id__in=ids).update(next_attempt_at=now)
        logger.info("webhook sweep: %d pending deliveries sent again", len(ids))
        _enqueue(ids)
    return len(ids)
