"""Webhooks on the production shape: a memory created through gunicorn, indexed by a real Celery
worker on Redis, whose `memory.indexed` is delivered by that worker to a receiver that answers 500
twice, retried after the backoff, and delivered on the third attempt."""

import pytest

from memories.services import api_key_create
from omi_memory.actors import Actor
from tests.support.api_client import call
from tests.support.processes import celery_worker, redis_url_or_skip, service_env, web_server
from tests.support.receiver import documented_verifier
from tests.support.transcripts import DENTIST
from webhooks.models import WebhookDelivery

# Real commits: gunicorn and the worker, other processes, must see the key and the endpoint.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_worker_retries_a_refused_delivery_with_backoff_until_it_is_answered(tmp_path, receiver, endpoint_for):
    env = {
        **service_env(redis_url_or_skip()),
        "WEBHOOKS_ALLOW_PRIVATE": "1",
        "WEBHOOKS_RETRY_BACKOFF_SECONDS": "1",  # then 2 s: each wait at least that, at most a quarter more
    }
    key = api_key_create(name="webhooks worker test", actor=Actor.command())[1]
    receiver.statuses = [500, 500]
    endpoint = endpoint_for(receiver, events=["memory.indexed"])
    logs = [tmp_path / "web.log", tmp_path / "worker.log"]

    with web_server(env, logs[0]) as base, celery_worker(env, logs[1]):
        created = call(base, key, "POST", "/memories", {"uid": "alice", "transcript": DENTIST}).json
        received = receiver.wait_for(3, seconds=180)

    tails = "\n".join(log.read_text()[-3000:] for log in logs)
    assert len(received) == 3, tails
    first, second, third = received
    assert first.body == second.body == third.body and first.json["data"]["memory"]["id"] == created["id"]
    assert second.at - first.at >= 1.0 and third.at - second.at >= 2.0  # the backoff, doubled
    assert documented_verifier()(endpoint.secret, third.headers["X-Omi-Signature"], third.body)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        "delivered",
        3,
        200,
        "",
    )
