"""The OpenAI client shared by the extractor and the embedder, and how its errors map to ours."""

import functools

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from omi_memory.errors import BackendError


@functools.cache
def _client(api_key: str, base_url: str | None, timeout: float, max_retries: int):
    import openai

    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)


def get_openai_client():
    """An `openai.OpenAI` for the current settings; the SDK retries 429/5xx/timeouts itself
    (OPENAI_MAX_RETRIES times, honouring Retry-After) before an error reaches us."""
    if not settings.OPENAI_API_KEY:
        raise ImproperlyConfigured("OPENAI_API_KEY must be set to use the openai extractor or embedder")
    return _client(
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_TIMEOUT, settings.OPENAI_MAX_RETRIES
    )


def backend_error(exc: Exception, what: str) -> BackendError:
    """An SDK error as a BackendError that says whether trying again later can help."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        transient = exc.status_code in (408, 409, 429) or exc.status_code >= 500
        return BackendError(f"{what}: HTTP {exc.status_code}: {_short(exc)}", permanent=not transient)
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError)):
        return BackendError(f"{what}: {type(exc).__name__}: {_short(exc)}")  # timeouts, dropped connections
    if isinstance(exc, (ValueError, AttributeError, TypeError)):  # a reply that is not what the API sends
        return BackendError(f"{what}: malformed reply: {type(exc).__name__}: {_short(exc)}")
    return BackendError(f"{what}: {type(exc).__name__}: {_short(exc)}", permanent=True)


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:300]
