from django.contrib import admin

from .models import (
    ActionItem,
    ApiKey,
    AuditEvent,
    Event,
    LocalVector,
    LocalVectorDeletion,
    LocalVectorVersion,
    Memory,
    MemoryVector,
    ReconcileRun,
    VectorIndex,
)


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
    trail is append-only; the other rows are the pipeline's and the services' to write."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "uid", "admin", "state", "created_by", "created_at", "last_used_at", "expires_at")
    list_filter = ("admin", "created_by", "revoked_at", "expires_at")
    search_fields = ("name", "prefix", "uid")
    exclude = ("key_hash",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "actor_type", "actor_name", "origin", "ip_address", "uid", "target_ids")
    list_filter = ("action", "actor_type", "origin")
    search_fields = ("actor_name", "uid")


@admin.register(ActionItem)
class ActionItemAdmin(ReadOnlyAdmin):
    list_display = ("description", "memory", "completed", "due_at", "merged_from")
    list_filter = ("completed",)
    search_fields = ("description", "memory__uid")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("title", "memory", "start", "duration_minutes", "merged_from")
    list_filter = ("start",)
    search_fields = ("title", "description", "memory__uid")


# Vectors, the local store and its bookkeeping: written by the pipeline, read-only here.


@admin.register(MemoryVector)
class MemoryVectorAdmin(ReadOnlyAdmin):
    list_display = ("vector_id", "memory", "position", "kind", "model", "dim")
    list_filter = ("kind", "model", "dim")
    search_fields = ("vector_id", "memory__uid")
    exclude = ("vector",)


@admin.register(LocalVector)
class LocalVectorAdmin(ReadOnlyAdmin):
    list_display = ("record_id", "namespace", "uid", "memory_id", "kind", "category", "source")
    list_filter = ("namespace", "kind", "category", "source")
    search_fields = ("record_id", "uid", "memory_id")
    exclude = ("values",)


@admin.register(LocalVectorVersion)
class LocalVectorVersionAdmin(ReadOnlyAdmin):
    list_display = ("namespace", "uid", "version", "epoch")
    list_filter = ("namespace",)
    search_fields = ("uid",)


@admin.register(LocalVectorDeletion)
class LocalVectorDeletionAdmin(ReadOnlyAdmin):
    list_display = ("id", "namespace", "uid", "row")
    list_filter = ("namespace",)
    search_fields = ("uid",)


@admin.register(VectorIndex)
class VectorIndexAdmin(ReadOnlyAdmin):
    list_display = ("store", "model", "dim", "updated_at")
    list_filter = ("model", "dim")
    search_fields = ("store", "model")


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "status", "trigger", "started_by", "uid", "repair", "missing", "orphaned", "repaired")
    list_filter = ("status", "trigger", "repair")
    search_fields = ("uid", "started_by", "store")
