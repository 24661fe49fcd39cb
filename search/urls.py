from django.urls import path

from omi_memory import dashboard  # noqa: F401 (registers the <id:...> converter)

from .views import analytics, clusters, duplicates, evaluation, experiments, search

urlpatterns = [
    path("search/", search.search_page, name="search"),
    path("search/judge/", search.search_judge, name="search_judge"),
    path("evaluation/", evaluation.evaluation, name="evaluation"),
    path("evaluation/profiles/<id:profile_id>/activate/", evaluation.profile_activate_view, name="profile_activate"),
    path(
        "evaluation/profiles/<id:profile_id>/deactivate/",
        evaluation.profile_deactivate_view,
        name="profile_deactivate",
    ),
    path("analytics/", analytics.analytics, name="analytics"),
    path("experiments/", experiments.experiment_list, name="experiment_list"),
    path("experiments/new/", experiments.experiment_new, name="experiment_new"),
    path("experiments/<id:experiment_id>/", experiments.experiment_detail, name="experiment_detail"),
    path("experiments/<id:experiment_id>/state/", experiments.experiment_state, name="experiment_state"),
    path("clusters/", clusters.cluster_list, name="cluster_list"),
    path("clusters/run/", clusters.cluster_run, name="cluster_run"),
    path("clusters/<id:run_id>/", clusters.cluster_detail, name="cluster_detail"),
    path("duplicates/", duplicates.duplicate_list, name="duplicate_list"),
    path("duplicates/scan/", duplicates.duplicate_scan, name="duplicate_scan"),
    path("duplicates/<id:pair_id>/", duplicates.duplicate_pair, name="duplicate_pair"),
    path("duplicates/<id:pair_id>/merge/", duplicates.duplicate_merge, name="duplicate_merge"),
    path("duplicates/<id:pair_id>/unmerge/", duplicates.duplicate_unmerge, name="duplicate_unmerge"),
    path("duplicates/<id:pair_id>/dismiss/", duplicates.duplicate_dismiss, name="duplicate_dismiss"),
]
