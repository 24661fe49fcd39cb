from django.contrib import admin

from .models import ActionItem, ApiKey, Event, Memory


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    fk_name = "memory"
    extra = 0


class EventInline(admin.TabularInline):
    model = Event
    fk_name = "memory"
    extra = 0


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ("id", "uid", "emoji", "title", "category", "source", "status", "created_at")
    list_filter = ("status", "category", "source")
    search_fields = ("uid", "title", "overview", "external_id")
    readonly_fields = (
        "status",
        "failure_reason",
        "attempts",
        "claimed_at",
        "indexed_at",
        "text_hash",
        "embedding_model",
        "embedding_dim",
        "updated_at",
    )
    inlines = [ActionItemInline, EventInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "uid", "is_active", "created_at", "last_used_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
