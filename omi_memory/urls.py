from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from .api import api

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="memory_list", permanent=False)),
    # asked for by pages that do not link ours (the API docs, the admin) and by other clients
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("", include("memories.monitoring")),  # /healthz, /readyz, /metrics
    path("accounts/", include("omi_memory.accounts")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("memories.urls")),
    path("", include("search.urls")),
    path("", include("webhooks.urls")),
]
