"""The search app's rows in /admin/: read-only, each with filters and search (searches, judgments,
uses, experiments, evaluations, parameter profiles, clusterings, duplicate pairs and BM25 snapshots
are made by the services, never by hand)."""

from django.contrib import admin

from memories.admin import ReadOnlyAdmin

from .models import (
    ClusterRun,
    DuplicatePair,
    DuplicateScan,
    EvalRun,
    Experiment,
    LexicalSnapshot,
    ParameterProfile,
    RelevanceFeedback,
    ResultUse,
    SearchLog,
)


@admin.register(SearchLog)
class SearchLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "uid", "strategy", "queries", "latency_ms", "experiment", "arm", "user", "api_key")
    list_filter = ("strategy", "arm", "created_at")
    search_fields = ("uid", "queries")


@admin.register(RelevanceFeedback)
class RelevanceFeedbackAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "search", "memory", "relevant", "user", "note")
    list_filter = ("relevant", "search__strategy")
    search_fields = ("search__uid", "note", "user__username")


@admin.register(ResultUse)
class ResultUseAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "search", "memory", "user", "api_key")
    list_filter = ("search__strategy", "created_at")
    search_fields = ("search__uid", "user__username")


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "name", "mode", "state", "traffic_share", "created_by")
    list_filter = ("state", "mode")
    search_fields = ("name",)


@admin.register(EvalRun)
class EvalRunAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "strategy",
        "dataset",
        "split",
        "profile",
        "index_version",
        "embedding_model",
        "seconds",
    )
    list_filter = ("strategy", "split", "embedding_model")
    search_fields = ("dataset", "strategy", "profile")


@admin.register(ParameterProfile)
class ParameterProfileAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "name", "strategy", "active", "activated_at")
    list_filter = ("strategy", "active")
    search_fields = ("name",)


@admin.register(ClusterRun)
class ClusterRunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "uid", "status", "k", "memories", "created_by")
    list_filter = ("status",)
    search_fields = ("uid",)


@admin.register(DuplicateScan)
class DuplicateScanAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "uid", "threshold", "status", "created_by", "finished_at")
    list_filter = ("status",)
    search_fields = ("uid",)


@admin.register(DuplicatePair)
class DuplicatePairAdmin(ReadOnlyAdmin):
    list_display = ("id", "uid", "memory_a", "memory_b", "similarity", "status", "kept", "resolved_by")
    list_filter = ("status",)
    search_fields = ("uid",)


@admin.register(LexicalSnapshot)
class LexicalSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("uid", "memories", "listed_at", "written_at", "layout")
    list_filter = ("written_at",)
    search_fields = ("uid",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("data")  # megabytes a heavy user
