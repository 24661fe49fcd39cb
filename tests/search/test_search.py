import pytest

from tests.support.memories import alices_five_and_bobs_one, february
from tests.support.transcripts import BUDGET, long_transcript

pytestmark = pytest.mark.django_db


def at(day: int) -> str:
    return february(day).isoformat()


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
