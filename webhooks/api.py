"""The webhooks API (admin keys): endpoints (create, list, get, change, delete) and their deliveries."""

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import ConfigDict

from memories.models import UID_PATTERN
from omi_memory.actors import Actor
from omi_memory.api_common import ApiSchema, Bool, Pagination, RowId, Text, documented_example, errors, key_uid
from omi_memory.errors import Forbidden
from omi_memory.throttles import READS, WRITES

from . import selectors, services, signing
from .models import EventType, WebhookDelivery

router = Router(tags=["webhooks"])

SECRET = Field(
    None,
    min_length=signing.SECRET_LENGTH[0],
    max_length=signing.SECRET_LENGTH[1],
    description="Signs each body (README, Webhooks). Left out: a new one is made; either way the answer shows it once.",
)
ENDPOINT_EXAMPLE = {
    "url": "https://hooks.example.com/omi",
    "events": ["memory.indexed", "memory.deleted"],
    "description": "our app's backend",
}


def check_admin(request: HttpRequest) -> None:
    """Webhooks are an admin's: a key for every user (or a signed-in admin); a uid-scoped key gets 403."""
    if key_uid(request) is not None:
        raise Forbidden(
            "webhooks need an admin key (one for every user), not a key scoped to one uid", code="admin_required"
        )


class EndpointIn(ApiSchema):
    model_config = ConfigDict(json_schema_extra=documented_example(ENDPOINT_EXAMPLE))

    url: Text = Field(
        ...,
        min_length=1,
        max_length=2000,
        description="http(s); its host must resolve to public addresses only (unless WEBHOOKS_ALLOW_PRIVATE).",
    )
    events: list[EventType] = Field(..., min_length=1, max_length=len(EventType.values))
    uid: str | None = Field(None, pattern=UID_PATTERN, description="Only this user's events; left out: every user's.")
    description: Text = Field("", max_length=200)
    secret: Text | None = SECRET


class EndpointPatch(ApiSchema):
    """What to change; what is left out stays. `enabled: true` enables a disabled endpoint again
    (its count of failed attempts starts again at 0); `new_secret: true` makes a new secret."""

    model_config = ConfigDict(json_schema_extra=documented_example({"enabled": True}))

    url: Text | None = Field(None, min_length=1, max_length=2000)
    events: list[EventType] | None = Field(None, min_length=1, max_length=len(EventType.values))
    uid: str | None = Field(None, pattern=f"{UID_PATTERN}|^$", description='"" for every user')
    description: Text | None = Field(None, max_length=200)
    enabled: Bool | None = None
    secret: Text | None = SECRET
    new_secret: Bool = False


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    events: list[str]
    uid: str = Field(..., description='"" for every user')
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str
    consecutive_failures: int = Field(..., description="failed attempts in a row (a success sets it back to 0)")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    secret_hint: str = Field(..., description="the secret's first characters")
    created_at: datetime
    created_by: str
    updated_at: datetime


class EndpointWithSecretOut(EndpointOut):
    secret: str = Field(..., description="shown in this answer only")


class DeliveryOut(Schema):
    id: int
    event_id: str
    event_type: str
    uid: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @staticmethod
    def resolve_event_id(obj: WebhookDelivery) -> str:
        return str(obj.event_id)

    @staticmethod
    def resolve_event_type(obj: WebhookDelivery) -> str:
        return obj.event.type

    @staticmethod
    def resolve_uid(obj: WebhookDelivery) -> str:
        return obj.event.uid


class DeliveryFilters(ApiSchema):
    # A Literal, not the model's `Status`: an enum is a named schema in the OpenAPI document, and
    # two named `Status` (the memory's) would be one there.
    status: Literal["pending", "delivered", "failed"] | None = None


@router.post(
    "/endpoints",
    response={201: EndpointWithSecretOut, **errors(403)},
    summary="Register a webhook endpoint (its secret shown once)",
    throttle=WRITES,
)
def create_endpoint(request: HttpRequest, payload: EndpointIn):
    check_admin(request)
    values = payload.dict()
    values["uid"] = values["uid"] or ""
    endpoint = services.webhook_endpoint_create(**values, actor=Actor.from_request(request))
    return Status(201, endpoint)


@router.get(
    "/endpoints", response={200: list[EndpointOut], **errors(403)}, summary="List webhook endpoints", throttle=READS
)
@paginate(Pagination)
def list_endpoints(request: HttpRequest):
    check_admin(request)
    return selectors.webhook_endpoint_list()


@router.get(
    "/endpoints/{int:endpoint_id}",
    response={200: EndpointOut, **errors(403, 404)},
    summary="Get a webhook endpoint",
    throttle=READS,
)
def get_endpoint(request: HttpRequest, endpoint_id: RowId):
    check_admin(request)
    return selectors.webhook_endpoint_get(endpoint_id=endpoint_id)


@router.patch(
    "/endpoints/{int:endpoint_id}",
    response={200: EndpointOut | EndpointWithSecretOut, **errors(403, 404)},
    summary="Change, enable, disable a webhook endpoint, or give it a new secret",
    throttle=WRITES,
)
def update_endpoint(request: HttpRequest, endpoint_id: RowId, payload: EndpointPatch):
    check_admin(request)
    endpoint = selectors.webhook_endpoint_get(endpoint_id=endpoint_id)
    endpoint = services.webhook_endpoint_update(endpoint=endpoint, actor=Actor.from_request(request), **payload.dict())
    if payload.new_secret or payload.secret:
        return EndpointWithSecretOut.from_orm(endpoint)
    return EndpointOut.from_orm(endpoint)


@router.delete(
    "/endpoints/{int:endpoint_id}",
    response={204: None, **errors(403, 404)},
    summary="Delete a webhook endpoint and its delivery log",
    throttle=WRITES,
)
def delete_endpoint(request: HttpRequest, endpoint_id: RowId):
    check_admin(request)
    endpoint = selectors.webhook_endpoint_get(endpoint_id=endpoint_id)
    services.webhook_endpoint_delete(endpoint=endpoint, actor=Actor.from_request(request))
    return Status(204, None)


@router.get(
    "/endpoints/{int:endpoint_id}/deliveries",
    response={200: list[DeliveryOut], **errors(403, 404)},
    summary="An endpoint's delivery log, newest first",
    throttle=READS,
)
@paginate(Pagination)
def list_deliveries(request: HttpRequest, endpoint_id: RowId, filters: Query[DeliveryFilters]):
    check_admin(request)
    endpoint = selectors.webhook_endpoint_get(endpoint_id=endpoint_id)
    return selectors.webhook_delivery_list(endpoint=endpoint, status=filters.status)
