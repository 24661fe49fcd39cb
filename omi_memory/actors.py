"""Who does a privileged action and from where: the `Actor` every audited service is given.

Built in one place from what the action came through: a dashboard request (the signed-in user),
an API request (the API key ninja authenticated, `request.auth`), or a management command (the OS
user, "command line"). Services record it in the audit trail (`memories.services.audit_record`).
"""

import getpass
import ipaddress
import os
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

USER = "user"
API_KEY = "api_key"
COMMAND = "command"

DASHBOARD = "dashboard"
API = "api"
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
        where = {
            "ip_address": client_ip(request),
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_CHARS],
        }
        auth = getattr(request, "auth", None)  # set by the API's authentication
        if auth is not None and hasattr(auth, "key_hash"):
            name = f"{auth.prefix}… ({auth.name})"[:NAME_CHARS]
            return cls(kind=API_KEY, name=name, origin=API, api_key_id=auth.id, **where)
        user = request.user
        origin = API if auth is not None else DASHBOARD
        return cls(kind=USER, name=user.get_username() or "anonymous", origin=origin, user_id=user.pk, **where)

    @classmethod
    def command(cls) -> "Actor":
        """A management command, run by the OS user of the process."""
        return cls(kind=COMMAND, name=_os_user(), origin=COMMAND_LINE)


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or with TRUSTED_PROXIES set, the address the outermost of
    those proxies appended to X-Forwarded-For (what a client writes there itself is not believed).
    Only a valid IP address counts; None when there is none (a request made in code)."""
    remote = _ip(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.TRUSTED_PROXIES
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
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
