from django.urls import path

from . import views

urlpatterns = [
    path("search/", views.search_page, name="search"),
    path("search/judge/", views.search_judge, name="search_judge"),
    path("evaluation/", views.evaluation, name="evaluation"),
    path("clusters/", views.cluster_list, name="cluster_list"),
    path("clusters/run/", views.cluster_run, name="cluster_run"),
    path("clusters/<int:run_id>/", views.cluster_detail, name="cluster_detail"),
    path("duplicates/", views.duplicate_list, name="duplicate_list"),
    path("duplicates/scan/", views.duplicate_scan, name="duplicate_scan"),
    path("duplicates/<int:pair_id>/merge/", views.duplicate_merge, name="duplicate_merge"),
    path("duplicates/<int:pair_id>/dismiss/", views.duplicate_dismiss, name="duplicate_dismiss"),
]
