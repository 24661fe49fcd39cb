import pytest
from django.conf import settings

from memories.models import Memory
from search.lexical import query_terms
from search.models import DuplicatePair, SearchLog
from search.services import SearchHit
from tests.support.memories import alices_five_and_bobs_one, february
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, long_transcript

pytestmark = pytest.mark.django_db


def at(day: int) -> str:
    return february(day).isoformat()


def pair(one: Memory, other: Memory, status: str) -> DuplicatePair:
    first, second = sorted([one, other], key=lambda memory: memory.id)
    return DuplicatePair.objects.create(uid=one.uid, memory_a=first, memory_b=second, similarity=0.97, status=status)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [hit["memory"]["id"] for hit in response.json()["results"]]


@pytest.fixture(scope="class")
def memories(shared_rows):
    with shared_rows():
        yield alices_five_and_bobs_one()


class TestOverAlicesFiveMemories:
    """Searches that only read the same memories, made once for the class (tests/support/memories.py)."""

    def test_the_closest_memory_in_meaning_comes_first(self, api, memories):
        cases = {
            "how much will the new tooth crown cost": "dentist",
            "money spent on groceries and takeout": "budget",
            "when do we ship the billing migration": "standup",
            "what is Sofia playing at the piano concert": "recital",
            "where should the tomatoes go": "garden",
        }
        for query, expected in cases.items():
            assert ids(api.post("/search", {"uid": "alice", "query": query}))[0] == memories[expected].id, query

    def test_results_carry_scores_in_order_and_k_limits_them(self, api, memories):
        body = api.post("/search", {"uid": "alice", "query": "dentist", "k": 3}).json()

        scores = [hit["score"] for hit in body["results"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert body["k"] == 3 and body["took_ms"] > 0
        assert len(api.post("/search", {"uid": "alice", "query": "dentist"}).json()["results"]) == 5

    def test_date_range_filter(self, api, memories):
        found = ids(
            api.post("/search", {"uid": "alice", "query": "dentist", "k": 10, "starts_at": at(2), "ends_at": at(4)})
        )

        assert sorted(found) == sorted(memories[n].id for n in ("budget", "standup", "recital"))
        assert memories["dentist"].id not in found

    def test_category_filter(self, api, memories):
        found = ids(
            api.post("/search", {"uid": "alice", "query": "dentist", "k": 10, "categories": ["finance", "work"]})
        )

        assert sorted(found) == sorted([memories["budget"].id, memories["standup"].id])

    def test_source_filter(self, api, memories):
        found = ids(api.post("/search", {"uid": "alice", "query": "dentist", "k": 10, "sources": ["phone"]}))

        assert sorted(found) == sorted([memories["budget"].id, memories["garden"].id])

    def test_filters_combine(self, api, memories):
        found = ids(
            api.post(
                "/search",
                {
                    "uid": "alice",
                    "query": "anything",
                    "k": 10,
                    "sources": ["phone", "omi"],
                    "starts_at": at(3),
                    "categories": ["personal", "family", "music", "finance"],
                },
            )
        )

        assert memories["dentist"].id not in found and memories["budget"].id not in found
        assert memories["recital"].id in found

    def test_a_user_with_no_memories_gets_no_results(self, api, memories):
        assert ids(api.post("/search", {"uid": "nobody", "query": "dentist"})) == []

    def test_nonsense_is_marked_weak_and_a_real_question_is_not(self, api, memories):
        nonsense = api.post("/search", {"uid": "alice", "query": "xyzzy qwerty"}).json()
        real = api.post("/search", {"uid": "alice", "query": "how much will the new tooth crown cost"}).json()

        assert len(nonsense["results"]) == 5 and all(hit["weak"] for hit in nonsense["results"])
        assert real["results"][0]["weak"] is False and real["results"][0]["memory"]["id"] == memories["dentist"].id
        assert nonsense["relevance_floor"] == settings.SEARCH_RELEVANCE_FLOOR
        log = SearchLog.objects.get(id=nonsense["search_id"])
        assert [r["weak"] for r in log.results] == [True] * 5 and log.params["relevance_floor"] > 0

    def test_the_relevance_floor_is_settable_per_search(self, api, memories):
        body = {"uid": "alice", "query": "xyzzy qwerty", "relevance_floor": 0}
        assert not any(hit["weak"] for hit in api.post("/search", body).json()["results"])
        body = {"uid": "alice", "query": "how much will the new tooth crown cost", "relevance_floor": 1}
        assert all(hit["weak"] for hit in api.post("/search", body).json()["results"])

    def test_near_duplicates_collapse_through_chains_of_open_or_confirmed_pairs(self, api, memories):
        dentist, budget, garden, standup = (memories[n] for n in ("dentist", "budget", "garden", "standup"))
        pair(dentist, budget, DuplicatePair.Status.OPEN)
        pair(budget, garden, DuplicatePair.Status.CONFIRMED)  # garden is under dentist through budget
        pair(dentist, standup, DuplicatePair.Status.DISMISSED)  # not a duplicate after all

        results = api.post("/search", {"uid": "alice", "query": "how much will the new tooth crown cost"}).json()

        shown = [hit["memory"]["id"] for hit in results["results"]]
        assert shown[0] == dentist.id and sorted(results["results"][0]["also"]) == sorted([budget.id, garden.id])
        assert sorted(shown[1:]) == sorted([standup.id, memories["recital"].id])
        assert all(hit["also"] == [] for hit in results["results"][1:])

    def test_a_memory_search_cannot_find_links_no_chain_of_pairs(self, api, memories):
        dentist, budget, garden = (memories[n] for n in ("dentist", "budget", "garden"))
        pair(dentist, budget, DuplicatePair.Status.OPEN)
        pair(budget, garden, DuplicatePair.Status.OPEN)
        Memory.objects.filter(id=budget.id).update(searchable=False)  # failed on reprocessing, say

        results = api.post("/search", {"uid": "alice", "query": "how much will the new tooth crown cost"}).json()

        shown = {hit["memory"]["id"]: hit["also"] for hit in results["results"]}
        assert budget.id not in shown and shown[dentist.id] == [] and shown[garden.id] == []

    def test_the_query_words_are_located_in_the_snippet_as_bm25_matches_them(self, api, memories):
        hit = api.post("/search", {"uid": "alice", "query": "CROWNS and the replacement", "k": 1}).json()["results"][0]

        marked = [hit["snippet"][start:end] for start, end in hit["highlights"]]
        assert hit["memory"]["id"] == memories["dentist"].id
        assert {word.lower() for word in marked} >= {"crown", "replacement"}  # stemmed, any case
        assert not {"and", "the"} & {word.lower() for word in marked}  # stop words never


def test_a_fact_deep_in_a_long_transcript_is_found_through_its_window(api, remember):
    transcript = long_transcript(40).replace(
        "On day 33 of the trip", "On day 33 the ferry to Madeira was cancelled because of the storm, and"
    )
    memory = remember("alice", transcript)
    remember("alice", BUDGET)

    hit = api.post("/search", {"uid": "alice", "query": "cancelled ferry to Madeira"}).json()["results"][0]

    assert hit["memory"]["id"] == memory.id
    assert "Madeira" in hit["snippet"]


@pytest.mark.parametrize(
    "body",
    [
        {"uid": "alice", "query": "x", "k": 0},
        {"uid": "alice", "query": "x", "k": 101},
        {"uid": "alice", "query": "x", "k": "many"},
        {"uid": "alice", "query": ""},
        {"uid": "alice", "query": "   "},
        {"uid": "alice"},
        {"query": "dentist"},
        {"uid": "alice", "query": "x", "starts_at": "2026-02-05T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"},
        {"uid": "alice", "query": "x", "starts_at": "the day before yesterday"},
        {"uid": "alice", "query": "x", "ends_at": "2026-02-30"},
        {"uid": "alice", "query": "x", "categories": ["cooking"]},
        {"uid": "alice", "query": "x", "sources": ["fax"]},
        {"uid": "alice", "query": "x", "categories": "health"},
        {"uid": "alice", "query": "x", "top_k": 3},
    ],
)
def test_bad_searches_get_a_422_in_the_error_shape(api, body):
    response = api.post("/search", body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_a_search_body_that_is_not_json_is_a_400(api):
    response = api.post("/search", raw="uid=alice&query=x")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_a_conversation_recorded_twice_is_one_result_with_the_other_under_it(api, remember):
    first = remember("alice", DENTIST)
    again = remember("alice", DENTIST)  # the duplicate check pairs it with the first on indexing
    others = [remember("alice", transcript).id for transcript in (BUDGET, GARDEN)]

    results = api.post("/search", {"uid": "alice", "query": "cracked crown", "k": 3}).json()["results"]

    head, *rest = [hit["memory"]["id"] for hit in results]
    assert head in (first.id, again.id) and sorted(rest) == sorted(others)  # three distinct results of k=3
    assert results[0]["also"] == [again.id if head == first.id else first.id]
    assert all(hit["also"] == [] for hit in results[1:])


def test_a_snippets_parts_mark_the_query_words_and_leave_the_rest_as_text():
    hit = SearchHit(
        memory=None, score=1.0, vector_id="", snippet="<b>Crowns</b> & the crown.", terms=query_terms("crown")
    )

    assert hit.snippet_parts == [
        ("<b>", False),
        ("Crowns", True),
        ("</b> & the ", False),
        ("crown", True),
        (".", False),
    ]
    assert hit.highlights == [(3, 9), (20, 25)]
