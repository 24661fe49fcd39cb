"""What every API router shares: the input schema base, the error schema, the uid scope of a key.

(The API-key auth itself is `memories.api.ApiKeyAuth`: keys are memories' models.)"""

from datetime import UTC, datetime

from django.http import HttpRequest
from ninja import Schema
from pydantic import ConfigDict, field_validator

from omi_memory.errors import Forbidden


class ErrorDetail(Schema):
    code: str
    message: str
    details: object | None = None


class ErrorOut(Schema):
    error: ErrorDetail


class ApiSchema(Schema):
    """Input schemas refuse fields they do not know; naive datetimes are taken as UTC."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


def key_uid(request: HttpRequest) -> str | None:
    """The uid the caller's key is scoped to, or None for a key that may act for every user."""
    return request.auth.uid or None


def check_uid(request: HttpRequest, uid: str) -> None:
    scoped = key_uid(request)
    if scoped is not None and uid != scoped:
        raise Forbidden(f"this API key may only act for uid {scoped!r}", code="uid_forbidden")
