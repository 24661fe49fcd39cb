from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhooks sit on top of `memories` and `search` and listen to their signals: neither app
    knows that webhooks exist (the import contract in .importlinter keeps the arrows one way)."""

    name = "webhooks"

    def ready(self):
        from memories.signals import memory_deleted, memory_failed, memory_indexed
        from search.signals import duplicate_found

        from . import events

        memory_indexed.connect(events.memories_indexed, dispatch_uid="webhooks.memory_indexed")
        memory_failed.connect(events.memories_failed, dispatch_uid="webhooks.memory_failed")
        memory_deleted.connect(events.memories_deleted, dispatch_uid="webhooks.memory_deleted")
        duplicate_found.connect(events.duplicates_found, dispatch_uid="webhooks.duplicate_found")
        # `manage.py sweep` (without Redis, what Celery beat's sweep_webhooks does) runs its sweeper.
        from omi_memory.sweeps import sweep_register

        from .services import webhook_sweep

        sweep_register("webhook deliveries", lambda: {"sent": webhook_sweep()})
