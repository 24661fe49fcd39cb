import socket

import pytest

from tests.support.actors import COMMAND
from tests.support.receiver import Receiver
from webhooks.services import webhook_endpoint_create


@pytest.fixture
def receiver(settings):
    """A receiver on 127.0.0.1 (so WEBHOOKS_ALLOW_PRIVATE is on), answering 200; set
    `receiver.statuses` to script other answers."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint_for(db):
    """Register an endpoint for a receiver, for these events (default: every one)."""

    def register(
        receiver: Receiver, events=("memory.indexed", "memory.failed", "memory.deleted", "duplicate.found"), **fields
    ):
        return webhook_endpoint_create(url=receiver.url, events=list(events), actor=COMMAND, **fields)

    return register


@pytest.fixture
def dns(monkeypatch):
    """`dns["hooks.example.net"] = ["93.184.215.14"]`: what a name resolves to (the resolver the
    webhooks use is the process's; names not set here resolve as usual)."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names
