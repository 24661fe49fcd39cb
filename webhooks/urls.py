from django.urls import path

from omi_memory import dashboard  # noqa: F401 (registers the <id:...> converter)

from . import views

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook_list"),
    path("webhooks/new/", views.webhook_create, name="webhook_create"),
    path("webhooks/<id:endpoint_id>/", views.webhook_detail, name="webhook_detail"),
    path("webhooks/<id:endpoint_id>/enable/", views.webhook_enable, name="webhook_enable"),
    path("webhooks/<id:endpoint_id>/secret/", views.webhook_secret, name="webhook_secret"),
    path("webhooks/<id:endpoint_id>/delete/", views.webhook_delete, name="webhook_delete"),
]
