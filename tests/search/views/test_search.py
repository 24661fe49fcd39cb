"""The search page: search one user's memories as you type, and judge the results."""

import html
import re

import pytest

from search.models import RelevanceFeedback, SearchLog
from tests.support.htmx import assert_whole_page_or_fragment
from tests.support.memories import alices_five_and_bobs_one
from tests.support.transcripts import DENTIST

# Every test sees the same memories (tests/support/memories.py), made once for the module: they are
# only read, and what a test writes (search logs, judgments) is rolled back after it.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memories")]


@pytest.fixture(scope="module")
def memories(shared_rows):
    with shared_rows():
        yield alices_five_and_bobs_one()


def result_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'id="result-(\d+)"', response.content.decode())]


def search(client, *, htmx: bool = False, **params):
    return client.get("/search/", {"uid": "alice", **params}, headers={"HX-Request": "true"} if htmx else {})


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for response in (client.get("/search/?uid=alice&query=crown"), client.post("/search/judge/", {})):
        assert response.status_code == 302 and "/login" in response["Location"]


def test_a_signed_in_user_without_a_group_is_refused(signed_in, memories):
    nobody = signed_in(None)

    assert search(nobody, query="crown").status_code == 403
    assert nobody.post("/search/judge/", {}).status_code == 403
    assert not SearchLog.objects.exists()


@pytest.mark.parametrize("group", ["analyst", "admin"])
def test_the_closest_memory_comes_first_with_its_score_title_and_snippet(signed_in, memories, group):
    response = search(signed_in(group), query="how much will the new tooth crown cost")

    assert response.status_code == 200
    page = response.content.decode()
    assert result_ids(response)[0] == memories["dentist"].id
    first = page[page.index(f'id="result-{memories["dentist"].id}"') :]
    first = first[: first.index("</li>")]
    assert memories["dentist"].title in first
    assert re.search(r'class="score"[^>]*>\d\.\d{3}<', first)
    snippet = html.unescape(re.search(r'<blockquote class="snippet">(.*?)</blockquote>', first, re.S)[1])
    assert re.sub(r"</?mark>", "", snippet).rstrip("…") in DENTIST  # a passage of the transcript
    assert f'href="/memories/{memories["dentist"].id}/"' in first
    assert "<html" in page  # the whole page, with the form
    assert 'name="query"' in page and 'value="how much will the new tooth crown cost"' in page


def test_every_search_is_logged_with_the_user_who_ran_it(signed_in, memories):
    analyst = signed_in("analyst")

    response = search(analyst, query="piano recital", strategy="semantic", k="3")

    log = SearchLog.objects.get()
    assert log.user == analyst.user and log.uid == "alice" and log.queries == ["piano recital"]
    assert log.strategy == "semantic" and log.params["k"] == 3
    assert f"search #{log.id}" in response.content.decode()
    assert len(result_ids(response)) == 3


def test_an_htmx_request_gets_only_the_results(signed_in, memories):
    response = search(signed_in("analyst"), query="tomatoes in the garden", htmx=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page and 'id="search-form"' not in page
    assert page.lstrip().startswith('<div id="results"')
    assert result_ids(response)[0] == memories["garden"].id


def test_a_history_restore_gets_the_whole_page_and_every_answer_varies_on_htmx(signed_in, memories):
    results = assert_whole_page_or_fragment(
        signed_in("analyst"), "/search/?uid=alice&query=tomatoes+in+the+garden", fragment='<div id="results"'
    )
    assert f'id="result-{memories["garden"].id}"' in results


def test_without_a_query_the_page_waits_and_logs_nothing(signed_in, memories):
    response = signed_in("analyst").get("/search/")

    page = response.content.decode()
    assert response.status_code == 200 and "Type a query" in page
    assert '<option value="alice" selected>alice (5)</option>' in page and "bob (1)" in page
    assert not result_ids(response) and not SearchLog.objects.exists()


def test_categories_and_dates_narrow_the_results(signed_in, memories):
    analyst = signed_in("analyst")
    health = memories["dentist"].category
    others = [m for name, m in memories.items() if name != "bob" and m.category != health]
    assert others, "the memories should not all share one category"

    by_category = result_ids(search(analyst, query="appointment", categories=health, k="10"))
    by_date = result_ids(search(analyst, query="appointment", starts="2026-02-02", ends="2026-02-04", k="10"))

    assert memories["dentist"].id in by_category
    assert not {m.id for m in others} & set(by_category)
    assert sorted(by_date) == sorted(memories[n].id for n in ("budget", "standup", "recital"))


def test_multi_query_searches_with_every_extra_query(signed_in, memories):
    analyst = signed_in("analyst")

    response = search(
        analyst, strategy="multi_query", query="tooth crown", queries="piano recital\n\nmortgage\n", k="3"
    )

    assert set(result_ids(response)) == {memories[n].id for n in ("dentist", "recital", "budget")}
    assert SearchLog.objects.get().queries == ["tooth crown", "piano recital", "mortgage"]


def test_another_users_memories_never_appear(signed_in, memories):
    analyst = signed_in("analyst")

    for strategy in ("semantic", "time_weighted", "multi_query", "hybrid"):
        found = result_ids(search(analyst, query="Bob dentist crown", strategy=strategy, k="50"))
        assert found and memories["bob"].id not in found, strategy
    assert result_ids(search(analyst, uid="bob", query="garden tomatoes", k="50")) == [memories["bob"].id]


def results_of(response) -> list[str]:
    """Each result's <li> element, as HTML."""
    return re.findall(r'<li id="result-\d+".*?</li>', response.content.decode(), re.S)


def test_nonsense_gets_results_dimmed_and_labelled_weak_and_the_scale_is_stated(signed_in, memories):
    analyst = signed_in("analyst")

    nonsense = search(analyst, query="xyzzy qwerty")
    real = search(analyst, query="how much will the new tooth crown cost")

    assert len(results_of(nonsense)) == 5
    assert all('class="card result weak"' in li and ">weak</span>" in li for li in results_of(nonsense))
    assert "5 results, 5 weak, for" in nonsense.content.decode()
    assert "Scores run from 0 to 1" in nonsense.content.decode()
    assert 'class="card result"' in results_of(real)[0] and ">weak</span>" not in results_of(real)[0]


def test_the_relevance_floor_and_half_life_are_options_of_the_page(signed_in, memories):
    analyst = signed_in("analyst")

    response = search(analyst, query="xyzzy qwerty", floor="0", strategy="time_weighted", half_life="7")

    assert not any(" weak" in li for li in results_of(response))
    page = response.content.decode()
    assert re.search(r"<details open>", page)  # options away from their defaults are shown
    assert SearchLog.objects.get().params | {"filters": None} == {
        "k": 10,
        "half_life_days": 7.0,
        "fusion": "sum",
        "relevance_floor": 0.0,
        "filters": None,
        "strategy_params": {"pool": 50},  # time_weighted's own parameters (search.strategies.PARAMS)
        "profile": None,
        "index_version": "",  # no managed index version yet: the configured parts
    }


def test_an_old_link_with_the_seeds_time_decay_is_read_as_its_half_life(signed_in, memories):
    response = search(signed_in("analyst"), query="crown", strategy="time_weighted", time_decay="0.1")

    assert response.status_code == 200 and result_ids(response)
    assert re.search(r'name="half_life" value="6.931"', response.content.decode())  # ln 2 / 0.1 days
    assert SearchLog.objects.get().params["half_life_days"] == pytest.approx(6.931, abs=1e-3)
    assert search(signed_in("admin"), query="crown", time_decay="fast").status_code == 400


def test_the_query_words_are_marked_in_the_snippet_in_any_case_and_form(signed_in, memories):
    first = results_of(search(signed_in("analyst"), query="CROWNS replacements", k="1"))[0]

    snippet = re.search(r'<blockquote class="snippet">(.*?)</blockquote>', first, re.S)[1]
    assert {word.lower() for word in re.findall(r"<mark>(.*?)</mark>", snippet)} >= {"crown", "replacement"}


def test_bad_parameters_are_explained_in_the_results_area(signed_in, memories):
    analyst = signed_in("analyst")

    for params, message in [
        ({"k": "0"}, "k: Ensure this value is greater than or equal to 1."),
        ({"starts": "2026-02-05", "ends": "2026-02-01"}, "End date: End date is before start date."),
        ({"uid": "nobody-here"}, "User: Select a valid choice"),
    ]:
        response = search(analyst, query="crown", htmx=True, **params)
        assert response.status_code == 400 and "Cannot search" in response.content.decode()
        assert message in response.content.decode()
    assert not SearchLog.objects.exists()


def test_a_model_mismatch_is_a_message_not_a_crash(signed_in, memories, settings, fake_openai):
    settings.EMBEDDER = "openai"

    response = search(signed_in("analyst"), query="crown")

    assert response.status_code == 400
    assert "reindex" in response.content.decode() and not result_ids(response)


def test_judging_stores_the_judgment_shows_it_and_can_change_it(signed_in, memories):
    analyst = signed_in("analyst")
    search(analyst, query="crown")
    log = SearchLog.objects.get()
    dentist = memories["dentist"]

    response = analyst.post(
        "/search/judge/",
        {"search_id": log.id, "memory_id": dentist.id, "relevant": "1", "note": "the crown"},
        HTTP_HX_REQUEST="true",
    )

    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    assert page.lstrip().startswith(f'<form id="judge-{log.id}-{dentist.id}"')
    assert "judged relevant" in page and 'aria-pressed="true"' in page and 'value="the crown"' in page
    judgment = RelevanceFeedback.objects.get()
    assert (judgment.relevant, judgment.user, judgment.note) == (True, analyst.user, "the crown")

    changed = analyst.post(
        "/search/judge/", {"search_id": log.id, "memory_id": dentist.id, "relevant": "0"}, HTTP_HX_REQUEST="true"
    )

    assert "judged not relevant" in changed.content.decode()
    assert RelevanceFeedback.objects.get().relevant is False


def test_an_admin_may_judge_too_and_without_js_returns_to_the_search(signed_in, memories):
    admin = signed_in("admin")
    search(admin, query="crown")
    log = SearchLog.objects.get()

    response = admin.post(
        "/search/judge/",
        {
            "search_id": log.id,
            "memory_id": memories["budget"].id,
            "relevant": "0",
            "next": "/search/?uid=alice&query=crown",
        },
    )

    assert response.status_code == 302 and response["Location"] == "/search/?uid=alice&query=crown"
    assert RelevanceFeedback.objects.get().relevant is False
    assert "judged not relevant" in admin.get(response["Location"]).content.decode()  # the message


def test_judging_a_memory_outside_the_search_or_an_unknown_search_is_refused(signed_in, memories):
    analyst = signed_in("analyst")
    search(analyst, query="crown", k="1")
    log = SearchLog.objects.get()

    outside = analyst.post("/search/judge/", {"search_id": log.id, "memory_id": memories["bob"].id, "relevant": "1"})
    unknown = analyst.post(
        "/search/judge/", {"search_id": log.id + 99, "memory_id": memories["dentist"].id, "relevant": "1"}
    )
    garbled = analyst.post("/search/judge/", {"search_id": log.id, "memory_id": "x", "relevant": "maybe"})
    offsite = analyst.post(
        "/search/judge/",
        {"search_id": log.id, "memory_id": memories["dentist"].id, "relevant": "1", "next": "https://evil.example/"},
    )

    assert outside.status_code == 404 and "is not a result of search" in outside.content.decode()
    assert unknown.status_code == 404 and "not found" in unknown.content.decode()
    assert garbled.status_code == 400 and "Memory id" in garbled.content.decode()
    assert offsite.status_code == 302 and offsite["Location"] == "/search/"
    assert list(RelevanceFeedback.objects.values_list("memory_id", flat=True)) == [memories["dentist"].id]


def test_judging_requires_the_csrf_token(signed_in, memories):
    analyst = signed_in("analyst", csrf_checks=True)
    search(analyst, query="crown")
    log = SearchLog.objects.get()

    response = analyst.post(
        "/search/judge/", {"search_id": log.id, "memory_id": memories["dentist"].id, "relevant": "1"}
    )

    assert response.status_code == 403
    assert not RelevanceFeedback.objects.exists()


def test_a_memory_found_by_its_own_vector_shows_the_start_of_its_transcript(signed_in, remember):
    cat = remember("carol", "Carol: I adopted a grey cat named Pixel from the shelter today, she is shy.")

    page = search(signed_in("analyst"), uid="carol", query="new pet", strategy="semantic").content.decode()

    assert re.search(r'<blockquote class="snippet">Carol: I adopted a grey cat named Pixel', page)
    assert f'id="result-{cat.id}"' in page
