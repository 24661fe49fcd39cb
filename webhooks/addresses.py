"""Where a webhook may be sent: the address rule.

Only `http` and `https` URLs, without credentials in them. Unless WEBHOOKS_ALLOW_PRIVATE is on, no
delivery to an address that is not public: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
link-local (169.254/16, fe80::/10, where cloud metadata answers), shared, reserved, unspecified or
multicast. The host is resolved when an endpoint is registered (to refuse it at once) and again at
each delivery, where every address the name resolves to must pass and the request goes to the
address that was checked (DNS rebinding: a name that answers a public address first and a private
one later is refused, never followed).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    """A URL and the checked address its request goes to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str  # the IP address checked, which the request connects to

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host (the Host header and TLS's
        server name keep the host)."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]:{self.port}" if ip.version == 6 else f"{ip}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        return urlsplit(self.url).netloc


def url_shape_problem(url: str) -> str | None:
    """What is wrong with the URL itself (before any resolution), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in DEFAULT_PORTS:
        return "must be an http or https URL"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "may not hold credentials (the signature authenticates the sender)"
    if port == 0:
        return "has port 0"
    return None


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address may not receive webhooks (it is not public), or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def checked_target(url: str, *, allow_private: bool | None = None) -> Target:
    """Resolve the URL's host and check every address it resolves to; the target to send to.
    Raises AddressRefused."""
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE if allow_private is None else allow_private
    problem = url_shape_problem(url)
    if problem:
        raise AddressRefused(f"the URL {problem}")
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{host} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in found))
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    if not allow_private:
        for ip in addresses:
            if kind := _refusal(ip):
                where = host if host == str(ip) else f"{host} resolves to {ip}, which"
                raise AddressRefused(
                    f"{where} is a {kind} address: webhooks go to public addresses only (WEBHOOKS_ALLOW_PRIVATE)"
                )
    return Target(url=url, scheme=parts.scheme, host=host, port=port, address=str(addresses[0]))
