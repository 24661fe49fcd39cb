"""One exception hierarchy.

`ApplicationError` and its children are what a caller got wrong (or may not do); the API maps
them to `{"error": {"code", "message", "details"}}` with their status, in one place
(`omi_memory/api.py`). `BackendError` is what a part of the pipeline (extractor, embedder,
vector store) raises: it says whether trying again could help, so a retry is never a guess.
"""

from typing import Any


class ApplicationError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class ValidationFailed(ApplicationError):
    status = 422
    code = "validation_error"


class Unauthorized(ApplicationError):
    status = 401
    code = "unauthorized"


class Forbidden(ApplicationError):
    status = 403
    code = "forbidden"


class NotFound(ApplicationError):
    status = 404
    code = "not_found"


class Conflict(ApplicationError):
    status = 409
    code = "conflict"


class BackendError(Exception):
    """A part of the pipeline failed. `permanent=False` means a retry may succeed."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}
