"""What every API router shares: the input schema base and the bounded types its fields use (the
rules are `omi_memory.bounds`), paging, the error schema and the errors each operation documents,
the uid scope of a key.

(The API-key auth itself is `memories.api.ApiKeyAuth`: keys are memories' models.)"""

from datetime import datetime
from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination
from pydantic import AfterValidator, BeforeValidator, ConfigDict, StrictBool, WithJsonSchema

from omi_memory import bounds
from omi_memory.errors import Forbidden

# Text: any string but NUL and lone surrogates; NotBlank: with at least one character not a space.
Text = Annotated[str, AfterValidator(bounds.clean_text), Field(json_schema_extra={"pattern": bounds.TEXT_PATTERN})]
NotBlank = Annotated[
    str,
    AfterValidator(bounds.clean_not_blank),
    Field(json_schema_extra={"pattern": bounds.NOT_BLANK_TEXT_PATTERN}),
]
# A date and time: RFC 3339 with an offset, its UTC value in the accepted range.
Moment = Annotated[
    datetime,
    BeforeValidator(bounds.clean_datetime_text),
    AfterValidator(bounds.clean_moment),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": bounds.datetime_pattern(),
            "description": f"RFC 3339 with an offset (Z or +HH:MM), {bounds.dates_rule()}.",
        }
    ),
]
RowId = Annotated[int, Field(ge=1, le=bounds.MAX_ROW_ID)]  # in a path


def _json_number(value: object) -> object:
    """A body's numbers are JSON numbers: not `true`, not `"5"` (pydantic would take both)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


# A body's numbers and booleans, as JSON types them (an integer may be written 5.0, as JSON Schema allows).
Int = Annotated[int, BeforeValidator(_json_number)]
Float = Annotated[float, BeforeValidator(_json_number)]


def float_between(low: float, high: float):
    """A JSON number in [low, high] that may also be left out (`float_between(0, 1) | None`): the
    bounds go before the validator, or the OpenAPI document loses them inside the optional type."""
    return Annotated[float, Field(ge=low, le=high), BeforeValidator(_json_number)]


Bool = StrictBool


class ErrorDetail(Schema):
    code: str
    message: str
    details: object | None = None


class ErrorOut(Schema):
    error: ErrorDetail


class ApiSchema(Schema):
    """Input schemas refuse fields they do not know."""

    model_config = ConfigDict(extra="forbid")


class Pagination(LimitOffsetPagination):
    """`limit` and `offset`, bounded."""

    class Input(Schema):
        limit: int = Field(bounds.MAX_LIMIT, ge=1, le=bounds.MAX_LIMIT)
        offset: int = Field(0, ge=0, le=bounds.MAX_OFFSET)


# The errors every operation may answer: a body that is not JSON (400), no valid key (401), a body
# over DATA_UPLOAD_MAX_MEMORY_SIZE (413), input out of bounds (422), over its rate (429).
ERRORS = {400: ErrorOut, 401: ErrorOut, 413: ErrorOut, 422: ErrorOut, 429: ErrorOut}


def errors(*statuses: int) -> dict:
    """An operation's documented errors: those of every operation, and its own (403 for another
    uid, 404 for an unknown id, 409 for a conflict, 503 for a backend that is down)."""
    return {**ERRORS, **{status: ErrorOut for status in statuses}}


def key_uid(request: HttpRequest) -> str | None:
    """The uid the caller's key is scoped to, or None for a key (or a signed-in admin, in the API
    docs) that may act for every user."""
    return getattr(request.auth, "uid", "") or None


def api_caller(request: HttpRequest) -> dict:
    """Who made the request, as the search log and judgments record it: `api_key`, or `user` (a
    signed-in admin trying the API in its docs)."""
    return {"api_key": request.auth} if hasattr(request.auth, "key_hash") else {"user": request.auth}


def documented_example(value: dict) -> dict:
    """A schema's example (`json_schema_extra`), under the key Swagger UI reads and JSON Schema's."""
    return {"example": value, "examples": [value]}


def check_uid(request: HttpRequest, uid: str) -> None:
    check_scope(key_uid(request), uid)


def check_scope(scoped: str | None, uid: str | None) -> None:
    """Forbidden unless a key scoped to `scoped` (None: every user) may act for `uid`."""
    if scoped is not None and uid != scoped:
        raise Forbidden(f"this API key may only act for uid {scoped!r}", code="uid_forbidden")
