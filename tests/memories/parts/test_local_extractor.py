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


WEDNESDAY_EVENING = datetime(2025, 4, 9, 19, 0, tzinfo=UTC)


def extract_at(transcript: str, started_at: datetime = WEDNESDAY_EVENING):
    return LocalExtractor().extract(transcript=transcript, started_at=started_at)


def test_an_event_is_at_the_time_said_6pm_is_18_00():
    result = extract_at(
        "Alice: So, big weekend. Mom's party is tomorrow night.\n"
        "Priya: Oh right, the seventieth! At Giorgio's?\n"
        "Alice: Yeah, 6pm, the back room. Eighteen people.\n"
    )

    assert [(e.title, e.start) for e in result.events] == [("Mom's party", datetime(2025, 4, 10, 18, 0, tzinfo=UTC))]


@pytest.mark.parametrize(
    "said, hour, minute",
    [
        ("tomorrow at half past nine", 9, 30),
        ("tomorrow at nine-thirty", 9, 30),
        ("tomorrow at noon", 12, 0),
        ("tomorrow at quarter to five", 16, 45),
        ("tomorrow at 8 in the evening", 20, 0),
        ("tomorrow night at nine", 21, 0),
        ("tomorrow at eight", 8, 0),
        ("tomorrow at 12am", 0, 0),
    ],
)
def test_times_are_read_as_people_say_them(said, hour, minute):
    result = extract_at(f"Dana: The dentist appointment is {said}.\n")

    assert [e.start for e in result.events] == [datetime(2025, 4, 10, hour, minute, tzinfo=UTC)]


def test_relative_days_count_from_when_the_memory_was_made():
    result = extract_at("Ben: My flight is on Friday at 4:40pm.\n")

    assert result.events[0].start == datetime(2025, 4, 11, 16, 40, tzinfo=UTC)


CROWN = """Speaker 2: For the permanent crown the doctor wants you back in two weeks.
Alice: Um, the 24th at 10:30 is good.
Speaker 2: Perfect, Monday March 24th, 10:30. Your estimated portion today is $287.50 for the prep, \
and the other half is at the seat appointment.
Alice: Great. I need to put this in my calendar before I forget. Monday the 24th, 10:30, crown.
Speaker 2: We'll also send you a text reminder two days before.
"""


def test_an_event_is_titled_by_its_own_clause_not_a_sentence_beside_it():
    result = extract_at(CROWN, datetime(2025, 3, 16, 8, 15, tzinfo=UTC))

    assert [(e.title, e.start) for e in result.events] == [("Crown", datetime(2025, 3, 24, 10, 30, tzinfo=UTC))]


def test_an_event_title_drops_the_speakers_lead():
    result = extract_at("Carmen: And I have a dentist appointment on Monday at 9am, so I'll be late.\n")

    assert [e.title for e in result.events] == ["Dentist appointment"]


def test_an_action_item_names_what_this_points_to():
    items = [a.description for a in extract_at(CROWN, datetime(2025, 3, 16, 8, 15, tzinfo=UTC)).action_items]

    assert items == ["Put this in my calendar: Monday the 24th, 10:30, crown"]


LABELLED = """Dmitri: Okay, blog post idea. Title: "The Nurse Who Got the Notification Late." \
It's about the queue incident.
Anna: That's actually a good title for the queue incident post.
Dmitri: The nurse got the notification late because the queue backed up.
"""


def test_a_title_has_no_label_quote_marks_or_list_of_fragments():
    labelled = extract_at(LABELLED).title
    listed = extract_at(
        "Alice: Monday the 24th, 10:30, crown.\nAlice: The dentist said the crown covers the whole cracked molar.\n"
    ).title

    assert not labelled.startswith("Title") and '"' not in labelled and "queue incident" in labelled.lower()
    assert listed == "Crown"


@pytest.mark.parametrize("transcript", [DENTIST, BUDGET, STANDUP, RECITAL, GARDEN, CHAT, CROWN])
def test_a_title_is_a_headline_not_a_sentence_picked_from_the_talk(transcript):
    title = extract_at(transcript).title

    assert title and len(title) <= 60 and not title.endswith(("…", ".", "?", "!")) and title[0].isupper()
    assert title.split()[0].lower() not in {"i", "i'll", "since", "for", "last", "we", "you", "so", "and", "it"}


def test_a_headline_names_the_topic_then_the_central_sentences_key_phrase():
    assert extract_at(BUDGET).title == "Mortgage payment: lower rate"
    assert extract_at(RECITAL).title == "Sofia's piano recital"  # no word said twice: the central phrase


@pytest.mark.parametrize(
    "said, title",
    [
        ("Ben: I'll call the listing agent about the sewer credit tomorrow.\n", "Call: listing agent"),
        ("Raj: I have the architecture review until 3:25 on Tuesday.\n", "Architecture review"),
        ("Ben: Saturday same time?\nPriya: Saturday, 7am, by the coffee cart.\n", "Coffee cart"),
    ],
)
def test_an_event_title_is_a_noun_phrase_that_names_the_event(said, title):
    assert [e.title for e in extract_at(said).events][:1] == [title]


def test_an_event_is_named_by_its_own_clause_not_the_reason_beside_it():
    said = "Alice: I was thinking dinner on Saturday the 12th, since her actual birthday is a Thursday.\n"

    assert [e.title for e in extract_at(said).events] == ["Dinner"]


def test_a_reminder_that_names_only_a_time_takes_its_task_from_the_sentence_before_it():
    said = extract_at("Dmitri: Tonight, after the kids are down. Just the outline. Remind me tonight at, like, nine.\n")
    bare = extract_at("Dmitri: Remind me tomorrow at, like, nine.\n")

    assert [(a.description, a.due_at) for a in said.action_items] == [
        ("Just the outline (tonight at, like, nine)", datetime(2025, 4, 9, 21, 0, tzinfo=UTC))
    ]
    assert bare.action_items == []


def test_a_sentence_does_not_end_after_an_abbreviation():
    items = extract_at(
        "Dmitri: I need to write the incident summary for St. Vincent's. Marcus, send it.\n"
    ).action_items

    assert [a.description for a in items] == ["Write the incident summary for St. Vincent's"]


def test_only_a_reminder_without_a_task_borrows_one_other_tasks_stay_as_said():
    said = extract_at("Alice: Not polished, but clickable. Let's review them next Tuesday at 3pm, all of us.\n")

    assert [a.description for a in said.action_items] == ["Review them next Tuesday at 3pm, all of us"]
