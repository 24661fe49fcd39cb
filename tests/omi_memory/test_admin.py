"""/admin/: every model there, each list with filters and a search that works, names in good English."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from tests.support.transcripts import DENTIST

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root", password="not-a-common-password-1"))
    return client


def test_every_model_of_the_project_is_in_the_admin_with_filters_and_search():
    from django.apps import apps

    ours = [m for app in ("memories", "search") for m in apps.get_app_config(app).get_models()]

    missing = [m.__name__ for m in ours if m not in admin.site._registry]
    bare = [
        m.__name__ for m in ours if not (admin.site._registry[m].list_filter and admin.site._registry[m].search_fields)
    ]
    assert missing == [] and bare == []


def test_each_list_answers_a_search_and_the_index_says_memories(superuser_client, remember):
    remember("alice", DENTIST)

    index = superuser_client.get("/admin/").content.decode()

    assert "Memories" in index and "Memorys" not in index
    assert "Judgments" in index and "Evaluation runs" in index and "Vector indexes" in index
    for model in admin.site._registry:
        if model._meta.app_label in ("memories", "search"):
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert superuser_client.get(url, {"q": "alice"}).status_code == 200, url
