from django.contrib import admin

from .models import ActionItem, ApiKey, AuditEvent, Event, Memory


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    fk_name = "memory"
    extra = 0
    can_delete = False


class EventInline(admin.TabularInline):
    model = Event
    fk_name = "memory"
    extra = 0
    can_delete = False


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
        "claim_token",
        "lease_until",
        "searchable",
        "indexed_at",
        "text_hash",
        "embedding_model",
        "embedding_dim",
        "updated_at",
    )
    inlines = [ActionItemInline, EventInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        """A memory is deleted through the services (the dashboard, the API, erase_user), which
        remove its vectors and record it in the audit trail; a row deleted here would do neither."""
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never changed here: keys are created, revoked and expired through the services (the
    dashboard's /keys/ page or the commands), so each change is in the audit trail; the audit
    trail is append-only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "uid", "state", "created_by", "created_at", "last_used_at", "expires_at")
    exclude = ("key_hash",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "actor_type", "actor_name", "origin", "ip_address", "uid", "target_ids")
    list_filter = ("action", "actor_type", "origin")
    search_fields = ("actor_name", "uid")
