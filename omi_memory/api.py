"""The JSON API: one NinjaAPI under /api/v1/, API-key auth, and the one error shape.

Every error a caller can cause comes back as `{"error": {"code", "message", "details"}}` with a
4xx status; this module is the one place that maps exceptions to it.
"""

import logging
from datetime import datetime, timezone

from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyHeader
from pydantic import ConfigDict, field_validator

from memories.models import ApiKey
from memories.selectors import api_key_authenticate
from omi_memory.errors import ApplicationError, Forbidden, error_body

logger = logging.getLogger(__name__)


class ApiKeyAuth(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return api_key_authenticate(raw_key=key or "")


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
            return value.replace(tzinfo=timezone.utc)
        return value


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def key_uid(request: HttpRequest) -> str | None:
    """The uid the caller's key is scoped to, or None for a key that may act for every user."""
    return request.auth.uid or None


def check_uid(request: HttpRequest, uid: str) -> None:
    scoped = key_uid(request)
    if scoped is not None and uid != scoped:
        raise Forbidden(f"this API key may only act for uid {scoped!r}", code="uid_forbidden")


api = NinjaAPI(
    title="omi-memory",
    version="1",
    description="Conversation transcripts in, structured searchable memories out.",
    auth=ApiKeyAuth(),
    urls_namespace="api-v1",
)


@api.exception_handler(ApplicationError)
def _application_error(request, exc: ApplicationError):
    return api.create_response(request, error_body(exc.code, exc.message, exc.details), status=exc.status)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    details = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid input"}
    where = ".".join(part for part in first["loc"] if part not in ("body", "query", "path", "payload"))
    message = f"{where}: {first['msg']}" if where else first["msg"]
    return api.create_response(request, error_body("validation_error", message, details), status=422)


@api.exception_handler(AuthenticationError)
def _authentication_error(request, exc):
    message = "a valid API key is required in the X-API-Key header"
    return api.create_response(request, error_body("unauthorized", message), status=401)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    code = "invalid_json" if "parse" in exc.message.lower() else {400: "bad_request"}.get(exc.status_code, "error")
    message = "the request body is not valid JSON" if code == "invalid_json" else exc.message
    return api.create_response(request, error_body(code, message), status=exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, error_body("not_found", "not found"), status=404)


@api.exception_handler(Exception)
def _unexpected(request, exc):
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return api.create_response(request, error_body("internal_error", "internal server error"), status=500)


api.add_router("/memories", "memories.api.router")
api.add_router("/search", "search.api.router")
