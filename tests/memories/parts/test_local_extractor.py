from datetime import UTC, datetime

import pytest

from memories.parts.extractors.base import ActionItemData, EventData, Extraction
from memories.parts.extractors.local import LocalExtractor
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP

FRIDAY = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def extract():
    extractor = LocalExtractor()
    return lambda transcript: extractor.extract(transcript=transcript, started_at=FRIDAY)


@pytest.mark.parametrize(
    "transcript, category",
    [(DENTIST, "health"), (BUDGET, "finance"), (STANDUP, "work"), (RECITAL, "family")],
)
def test_category_by_similarity_to_examples(extract, transcript, category):
    assert extract(transcript).category == category


def test_title_and_overview_come_from_the_transcript(extract):
    result = extract(BUDGET)

    assert 0 < len(result.title) <= 120 and len(result.title.split()) <= 10
    assert result.overview.count(".") >= 2
    for sentence in result.overview.split(". "):
        assert sentence.rstrip(".").lower() in BUDGET.lower()
    assert result.emoji == "💰"


def test_action_items_from_spoken_patterns(extract):
    items = [a.description for a in extract(BUDGET).action_items]

    assert "Cut back on takeout, that was almost three hundred on its own" in items  # "we should"
    assert "Call the bank about refinancing the mortgage at a lower rate" in items  # "I need to"
    assert any(i.startswith("Go over the monthly budget") for i in items)  # "let's"


def test_events_from_time_expressions_relative_to_the_start(extract):
    standup = extract(STANDUP).events
    recital = extract(RECITAL).events

    # "so we can ship on Thursday" (no time given: 9am), "the sprint demo is on Friday at 10am"
    assert [(e.start.date().isoformat(), e.start.hour) for e in standup] == [("2026-11-26", 9), ("2026-11-27", 10)]
    assert recital[0].start == datetime(2026, 11, 21, 14, 0, tzinfo=UTC)  # this Saturday, at 2pm
    assert all(e.title and e.description for e in standup + recital)


def test_no_events_without_time_expressions(extract):
    assert extract(GARDEN).events == []


def test_cleaning_bounds_lengths_and_maps_unknown_categories_to_other():
    raw = Extraction(
        title="t" * 500,
        overview="o " * 2000,
        category="Cooking",
        action_items=[ActionItemData("   "), ActionItemData("call mom " * 100)],
        events=[EventData("", FRIDAY), EventData("Dinner", FRIDAY, duration_minutes=99999)],
    )

    clean = raw.cleaned()

    assert clean.category == "other" and clean.emoji
    assert len(clean.title) <= 120 and len(clean.overview) <= 1200
    assert len(clean.action_items) == 1 and len(clean.action_items[0].description) <= 500
    assert [e.title for e in clean.events] == ["Dinner"] and clean.events[0].duration_minutes == 24 * 60


CHAT = """Caroline: Wow, Melanie, that's awesome!
Melanie: Thanks Caroline! [shares photo: a photo of a bowl on a table]
Caroline: Wow, love that bowl, Melanie!
Melanie: I signed up for a pottery class at the community center last Tuesday.
Caroline: That sounds so fun, Melanie!
Melanie: The pottery teacher said my first bowl was pretty good for a beginner.
Caroline: Haha, you're amazing, Melanie!
"""


def test_a_chatty_conversation_is_titled_by_what_it_is_about_not_its_reactions(extract):
    """Reactions, the speakers' names and stage directions ("[shares photo: ...]") are everywhere
    in a chat and say nothing of its subject."""
    result = extract(CHAT)

    assert "pottery" in result.title.lower()
    assert not result.title.startswith(("Wow", "[", "Thanks", "That sounds"))
    assert "melanie" not in result.title.lower() and "caroline" not in result.title.lower()
    assert "[" not in result.overview and "pottery class" in result.overview


def test_a_vocative_is_dropped_from_a_title():
    from memories.parts.extractors.local import _drop_vocatives

    assert _drop_vocatives("Wow Evan, that's an awesome painting", {"evan"}) == "That's an awesome painting"
    assert _drop_vocatives("I finished the painting, Evan!", {"evan"}) == "I finished the painting!"
    assert _drop_vocatives("Evan Almighty is on tonight", {"evan"}) == "Evan Almighty is on tonight"
