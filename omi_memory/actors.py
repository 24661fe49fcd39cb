"""Who does a privileged action and from where: the `Actor` every audited service is given.

Built in one place from what the action came through: a dashboard request (the signed-in user),
an API request (the API key ninja authenticated, `request.auth`), or a management command (the OS
user, "command line"). Services record it in the audit trail (`memories.services.audit_record`).
"""

import getpass
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

USER = "user"
API_KEY = "api_key"
COMMAND = "command"

DASHBOARD = "dashboard"
API = "api"
MCP = "mcp"
COMMAND_LINE = "command line"

USER_AGENT_CHARS = 300
NAME_CHARS = 150


@dataclass(frozen=True)
class Actor:
    kind: str  # USER, API_KEY or COMMAND
    name: str  # the username, the key's prefix and name, the OS user
    origin: str  # DASHBOARD, API or COMMAND_LINE
    user_id: int | None = None
    api_key_id: int | None = None
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> "Actor":
        """The API key of an API request, else the dashboard's signed-in user; with the client's
        address (`client_ip`: behind TRUSTED_PROXIES, the one they saw) and user agent."""
        auth = getattr(request, "auth", None)  # set by the API's authentication
        if auth is not None and hasattr(auth, "key_hash"):
            return cls.from_api_key(auth, origin=API, meta=request.META)
        user = request.user
        origin = API if auth is not None else DASHBOARD
        name = user.get_username() or "anonymous"
        return cls(kind=USER, name=name, origin=origin, user_id=user.pk, **_where(request.META))

    @classmethod
    def from_api_key(cls, key, *, origin: str, meta: Mapping | None = None) -> "Actor":
        """An API key (`memories.models.ApiKey`) acting through `origin` (API, MCP); `meta`: the
        request's WSGI environ (a stdio MCP server has none: no address)."""
        name = f"{key.prefix}… ({key.name})"[:NAME_CHARS]
        return cls(kind=API_KEY, name=name, origin=origin, api_key_id=key.id, **_where(meta or {}))

    @classmethod
    def command(cls) -> "Actor":
        """A management command, run by the OS user of the process."""
        return cls(kind=COMMAND, name=_os_user(), origin=COMMAND_LINE)


def _where(meta: Mapping) -> dict:
    return {"ip_address": meta_ip(meta), "user_agent": meta.get("HTTP_USER_AGENT", "")[:USER_AGENT_CHARS]}


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or with TRUSTED_PROXIES set, the address the outermost of
    those proxies appended to X-Forwarded-For (what a client writes there itself is not believed).
    Only a valid IP address counts; None when there is none (a request made in code)."""
    return meta_ip(request.META)


def meta_ip(meta: Mapping) -> str | None:
    """`client_ip` of a request's META (its WSGI environ)."""
    remote = _ip(meta.get("REMOTE_ADDR", ""))
    proxies = settings.TRUSTED_PROXIES
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if not proxies or not hops:
        return remote
    return _ip(hops[-min(proxies, len(hops))]) or remote


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _os_user() -> str:
    try:
        return getpass.getuser()[:NAME_CHARS]
    except (KeyError, OSError):  # no name for this uid (a container's user without a passwd entry)
        return f"uid {os.getuid()}"
