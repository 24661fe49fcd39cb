"""Celery tasks of webhooks: thin, ids only, over `services`.

Names are fixed (`name=`), so messages queued before a deploy that moves code still find their task.
A delivery is retried by the task itself (`self.retry` with the countdown the service gives: the
backoff), at most WEBHOOKS_MAX_ATTEMPTS attempts in all, which the delivery's row counts; a message
lost on the way is sent again by `sweep_webhooks` (Celery beat).
"""

from celery import shared_task

from . import services


@shared_task(bind=True, acks_late=True, max_retries=None, name="webhooks.tasks.deliver_webhook")
def deliver_webhook(self, delivery_id: int) -> None:
    """One attempt of a delivery; a failed one is tried again after its backoff."""
    countdown = services.webhook_delivery_attempt(delivery_id=delivery_id)
    if countdown is not None:
        raise self.retry(countdown=countdown)


@shared_task(name="webhooks.tasks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Send again the pending deliveries whose message was lost (run by Celery beat)."""
    return services.webhook_sweep()
