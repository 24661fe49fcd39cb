"""The JSON API: one NinjaAPI under /api/v1/, API-key auth, and the one error shape.

Every error a caller can cause comes back as `{"error": {"code", "message", "details"}}` with a
4xx status; this module is the one place that maps exceptions to it.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.security import APIKeyCookie

from memories.api import ApiKeyAuth
from memories.api import router as memories_router
from omi_memory import bounds, throttles
from omi_memory.errors import ApplicationError, BackendError, error_body
from omi_memory.roles import is_admin
from search.api import router as search_router
from webhooks.api import router as webhooks_router

logger = logging.getLogger(__name__)


class Api(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        return throttles.document_retry_after(super().get_openapi_schema(**kwargs))


class AdminSessionAuth(APIKeyCookie):
    """A dashboard admin's session, with its CSRF token (the API docs' "Try it out" sends both):
    acts for every user. Anyone else is left to the API key, without a CSRF check."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request) -> str | None:
        return super()._get_key(request) if is_admin(request.user) else None

    def authenticate(self, request, key: str | None):
        return request.user if key and is_admin(request.user) else None


api = Api(
    title="omi-memory",
    version="1",
    description="Conversation transcripts in, structured searchable memories out. Send an API key in "
    "`X-API-Key`; a dashboard admin signed in may try the API here with their session.",
    auth=[AdminSessionAuth(), ApiKeyAuth()],
    urls_namespace="api-v1",
)


@api.exception_handler(ApplicationError)
def _application_error(request, exc: ApplicationError):
    return api.create_response(request, error_body(exc.code, exc.message, exc.details), status=exc.status)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    if not request.body and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors):
        # No body where a JSON object is expected: it does not parse, like any other text that is not JSON.
        message = "the request body is empty; a JSON object is expected"
        return api.create_response(request, error_body("invalid_json", message), status=400)
    # At most MAX_ERROR_DETAILS entries, each part cut short: a body of a million unknown keys (or
    # one key of a million characters) gets an answer of a few kilobytes.
    cut = bounds.MAX_ERROR_TEXT
    details = [
        {
            "loc": [str(part)[:cut] for part in e.get("loc", ())[:10]],
            "msg": str(e.get("msg", ""))[:cut],
            "type": str(e.get("type", ""))[:cut],
        }
        for e in exc.errors[: bounds.MAX_ERROR_DETAILS]
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid input"}
    where = ".".join(part for part in first["loc"] if part not in ("body", "query", "path", "payload"))
    message = f"{where}: {first['msg']}" if where else first["msg"]
    if len(exc.errors) > len(details):
        message += f" (and {len(exc.errors) - 1} more errors; details has the first {len(details)})"
    return api.create_response(request, error_body("validation_error", message, details), status=422)


@api.exception_handler(RequestDataTooBig)
def _too_large(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    message = f"the request body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    return api.create_response(request, error_body("request_too_large", message), status=413)


@api.exception_handler(AuthenticationError)
def _authentication_error(request, exc):
    message = "a valid API key is required in the X-API-Key header"
    return api.create_response(request, error_body("unauthorized", message), status=401)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    code = "invalid_json" if "parse" in exc.message.lower() else {400: "bad_request"}.get(exc.status_code, "error")
    message = "the request body is not valid JSON" if code == "invalid_json" else exc.message
    return api.create_response(request, error_body(code, message), status=exc.status_code)


@api.exception_handler(Throttled)
def _throttled(request, exc: Throttled):
    seconds = throttles.retry_after(exc)
    who = "this API key" if getattr(request, "auth", None) is not None else "this address without a valid API key"
    message = f"too many requests from {who}; try again in {seconds} s"
    response = api.create_response(request, error_body("throttled", message, {"retry_after": seconds}), status=429)
    response["Retry-After"] = str(seconds)
    return response


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, error_body("not_found", "not found"), status=404)


@api.exception_handler(BackendError)
def _backend_error(request, exc: BackendError):
    logger.warning("backend unavailable in %s %s: %s", request.method, request.path, exc)
    message = "a backend service (embedder or vector store) is unavailable; try again later"
    return api.create_response(request, error_body("backend_unavailable", message), status=503)


@api.exception_handler(Exception)
def _unexpected(request, exc):
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return api.create_response(request, error_body("internal_error", "internal server error"), status=500)


api.add_router("/memories", memories_router)
api.add_router("/search", search_router)
api.add_router("/webhooks", webhooks_router)
