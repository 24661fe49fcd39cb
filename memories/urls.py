from django.urls import path

from omi_memory import dashboard  # noqa: F401 (registers the <id:...> converter)

from . import views

urlpatterns = [
    path("memories/", views.memory_list, name="memory_list"),
    path("memories/<id:memory_id>/", views.memory_detail, name="memory_detail"),
    path("memories/<id:memory_id>/reprocess/", views.memory_reprocess, name="memory_reprocess"),
    path("memories/<id:memory_id>/delete/", views.memory_delete, name="memory_delete"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("vectors/", views.vector_index, name="vector_index"),
    path("pipeline/retry/", views.pipeline_retry, name="pipeline_retry"),
    path("pipeline/reconcile/", views.pipeline_reconcile, name="pipeline_reconcile"),
    path("keys/", views.api_key_list, name="api_key_list"),
    path("keys/new/", views.api_key_create, name="api_key_create"),
    path("keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("keys/<int:key_id>/expire/", views.api_key_expire, name="api_key_expire"),
    path("audit/", views.audit_list, name="audit_list"),
]
