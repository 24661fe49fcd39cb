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
