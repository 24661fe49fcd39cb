from django.contrib import admin
from django.urls import include, path, register_converter
from django.views.generic import RedirectView

from . import bounds
from .api import api


class RowIdConverter:
    """`<id:name>` in a page's path: a row id, 1 to 2**63 - 1; any other number is no such page."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= bounds.MAX_ROW_ID:
            raise ValueError(value)
        return number

    def to_url(self, value) -> str:
        return str(value)


register_converter(RowIdConverter, "id")  # before the apps' URLs, which use it

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="memory_list", permanent=False)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("memories.urls")),
    path("", include("search.urls")),
]
