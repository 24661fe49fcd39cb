"""The Clusters pages: who may see and run them, what a run shows, while running and when done."""

import re

import pytest
from django.urls import reverse

from omi_memory.charts import PALETTE
from search.models import ClusterRun
from tests.support.htmx import assert_whole_page_or_fragment
from tests.support.memories import indexed_memory
from tests.support.transcripts import HEALTH, MONEY

# Every test sees the same memories of u-map, made once for the module (what a test changes, such
# as the runs it starts, is rolled back after it).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memories")]


@pytest.fixture(scope="module")
def memories(shared_rows):
    with shared_rows():
        yield [indexed_memory("u-map", text) for text in HEALTH[:3] + MONEY[:3]]


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    for url in (reverse("cluster_list"), reverse("cluster_detail", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_signed_in_users_without_a_group_get_403(signed_in):
    client = signed_in(None)

    assert client.get(reverse("cluster_list")).status_code == 403
    assert client.post(reverse("cluster_run"), {"uid": "u-map"}).status_code == 403


def test_analysts_see_past_runs_but_cannot_start_one(signed_in, memories):
    run = ClusterRun.objects.create(uid="u-map", status=ClusterRun.Status.FAILED, error="something broke")
    analyst = signed_in("analyst")

    page = analyst.get(reverse("cluster_list"))

    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{reverse("cluster_detail", args=[run.id])}"' in html and "u-map" in html
    assert 'id="cluster-form"' not in html and ">Run</button>" not in html
    assert analyst.post(reverse("cluster_run"), {"uid": "u-map", "k": "2"}).status_code == 403
    assert ClusterRun.objects.count() == 1


def test_an_admin_runs_a_clustering_and_sees_the_map_and_clusters(signed_in, memories):
    admin = signed_in("admin")
    form = admin.get(reverse("cluster_list")).content.decode()
    assert 'id="cluster-form"' in form and '<option value="u-map"' in form

    response = admin.post(reverse("cluster_run"), {"uid": "u-map", "k": "", "k_min": "2", "k_max": "4"})

    run = ClusterRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("cluster_detail", args=[run.id])
    assert run.created_by == admin.user and run.status == ClusterRun.Status.DONE, run.error
    html = admin.get(response["Location"]).content.decode()
    svg = re.search(r"<svg id=\"cluster-map\".*?</svg>", html, re.S).group(0)
    assert svg.count("<circle") == len(memories)
    for memory in memories:
        assert f'<a href="{reverse("memory_detail", args=[memory.id])}"><circle id="point-{memory.id}"' in svg
    assert svg.count("<title>") == len(memories) and memories[0].title in svg
    assert ">first principal component</text>" in svg and ">second principal component</text>" in svg
    colours = dict(re.findall(r'<circle id="point-(\d+)"[^>]*fill="(#[0-9a-f]{6})"', svg))
    assert len(set(colours.values())) == 2  # a colour per cluster, the same as its card's
    for cluster in run.clusters:
        # the card's colour is a class of app.css (palette-N: PALETTE[N]), not a style attribute
        card = re.search(rf'<section id="cluster-{cluster["index"]}" class="card cluster-card palette-(\d+)"', html)
        assert {colours[str(m)] for m in cluster["memory_ids"]} == {PALETTE[int(card.group(1))]}
    assert html.count('class="card cluster-card palette-') == run.k == 2
    assert "dentist" in html.lower() and "budget" in html.lower()  # in the labels or the titles
    assert 'hx-trigger="every 1s"' not in html
    listing = admin.get(reverse("cluster_list")).content.decode()
    assert f'href="{reverse("cluster_detail", args=[run.id])}"' in listing and "admin" in listing


def test_an_htmx_run_redirects_the_browser_to_the_run(signed_in, memories):
    admin = signed_in("admin")

    response = admin.post(reverse("cluster_run"), {"uid": "u-map", "k": "2"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("cluster_detail", args=[ClusterRun.objects.get().id])


@pytest.mark.parametrize("status", [ClusterRun.Status.QUEUED, ClusterRun.Status.RUNNING])
def test_an_unfinished_run_shows_a_status_that_polls_itself(signed_in, db, status):
    run = ClusterRun.objects.create(
        uid="u-map", status=status, progress="k=3: silhouette 0.31 (2/4)" if status == "running" else ""
    )
    url = reverse("cluster_detail", args=[run.id])
    analyst = signed_in("analyst")

    partial = analyst.get(url, headers={"HX-Request": "true"}).content.decode()

    assert partial.lstrip().startswith('<div id="cluster-run"')
    assert f'hx-get="{url}"' in partial and 'hx-trigger="every 1s"' in partial and 'hx-swap="outerHTML"' in partial
    assert status in partial and "<html" not in partial
    if status == "running":
        assert "k=3: silhouette 0.31 (2/4)" in partial


def test_the_polled_partial_becomes_the_result_when_the_run_is_done(signed_in, memories):
    from search.analysis.clusters import cluster_run_execute

    run = ClusterRun.objects.create(uid="u-map", k_requested=2)
    url = reverse("cluster_detail", args=[run.id])
    analyst = signed_in("analyst")
    assert 'hx-trigger="every 1s"' in analyst.get(url, headers={"HX-Request": "true"}).content.decode()

    cluster_run_execute(run_id=run.id)
    partial = analyst.get(url, headers={"HX-Request": "true"}).content.decode()

    assert partial.lstrip().startswith('<div id="cluster-run"') and "every 1s" not in partial
    assert partial.count("<circle") == len(memories) and "cluster-card" in partial


def test_a_failed_run_shows_its_reason(signed_in, db):
    run = ClusterRun.objects.create(
        uid="u-map", status=ClusterRun.Status.FAILED, error="uid 'u-map' has 1 indexed memories"
    )

    html = signed_in("analyst").get(reverse("cluster_detail", args=[run.id])).content.decode()

    assert "failed" in html and "uid &#x27;u-map&#x27; has 1 indexed memories" in html
    assert "every 1s" not in html


def test_a_run_that_does_not_exist_is_404(signed_in, db):
    assert signed_in("analyst").get(reverse("cluster_detail", args=[999])).status_code == 404


def test_a_post_without_the_csrf_token_is_refused(signed_in, memories):
    admin = signed_in("admin", csrf_checks=True)

    response = admin.post(reverse("cluster_run"), {"uid": "u-map", "k": "2"})

    assert response.status_code == 403
    assert not ClusterRun.objects.exists()


def test_a_run_page_comes_whole_to_a_history_restore_and_varies_on_htmx(signed_in, db):
    run = ClusterRun.objects.create(uid="u-map", status=ClusterRun.Status.RUNNING, progress="k=2")

    polled = assert_whole_page_or_fragment(
        signed_in("analyst"), reverse("cluster_detail", args=[run.id]), fragment='<div id="cluster-run"'
    )

    assert 'hx-trigger="every 1s"' in polled


@pytest.mark.parametrize(
    "posted, message",
    [
        ({"k": "1"}, "k must be at least 2"),
        ({"k": "two"}, "k must be a whole number or auto"),
        ({"k": "auto", "k_min": "two"}, "The smallest k must be a whole number."),
        ({"k": "", "k_max": "ten"}, "The largest k must be a whole number."),
        ({"k": "", "k_min": "5", "k_max": "3"}, "the smallest k (5) is larger than the largest (3)"),
    ],
)
def test_a_bad_k_shows_the_form_again_with_the_reason(signed_in, memories, posted, message):
    admin = signed_in("admin")

    page = admin.post(reverse("cluster_run"), {"uid": "u-map", **posted})
    partial = admin.post(reverse("cluster_run"), {"uid": "u-map", **posted}, headers={"HX-Request": "true"})

    assert page.status_code == 400 and message in page.content.decode()
    for name, value in posted.items():  # the form keeps what was typed
        assert f'name="{name}" value="{value}"' in page.content.decode()
    assert partial.status_code == 400 and partial.content.decode().lstrip().startswith('<form id="cluster-form"')
    assert message in partial.content.decode()
    assert not ClusterRun.objects.exists()
