from django.contrib import admin

from memories.admin import ReadOnlyAdmin

from .models import WebhookDelivery, WebhookEndpoint, WebhookEvent


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "url", "uid", "enabled", "consecutive_failures", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "uid", "description")
    exclude = ("secret",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "uid", "created_at")
    list_filter = ("type",)
    search_fields = ("uid",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "endpoint", "event", "status", "attempts", "response_status", "last_attempt_at")
    list_filter = ("status",)
