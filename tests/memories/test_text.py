"""The words of a transcript: speakers, sentences, words and the stop words of each job."""

import pytest

from memories.text import (
    LABEL_STOP_WORDS,
    SENTENCE_END,
    SPEAKER,
    SPEAKER_LINES,
    TERM,
    TITLE_STOP_WORDS,
    WORD,
    content_words,
    split_turns,
)


@pytest.mark.parametrize(
    "line, speaker",
    [
        ("Dr. Patel: The crown has to come off.", "Dr. Patel"),
        ("Speaker 2: yes, at 10:30.", "Speaker 2"),
        ("Meeting moved to 10:30 tomorrow", None),  # a clock time is no speaker
        ("See https://example.com for the rest", None),
        ("A very long sentence that happens to run on and on: then a colon", None),  # over 40 characters
        (": nobody", None),
    ],
)
def test_a_speaker_is_a_short_label_before_a_colon_and_a_space(line, speaker):
    match = SPEAKER.match(line)

    assert (match.group(1) if match else None) == speaker


def test_every_turns_label_is_taken_off_a_whole_transcript_and_nothing_else():
    transcript = "Alice: See you at 10:30.\nBob: Sure: bring the keys.\nno label here"

    assert SPEAKER_LINES.sub("", transcript) == "See you at 10:30.\nSure: bring the keys.\nno label here"


def test_blank_lines_are_not_turns():
    assert split_turns("A: one\n\n   \n  B: two  \n") == ["A: one", "B: two"]


def test_sentences_end_at_a_stop_followed_by_space_not_inside_numbers():
    assert SENTENCE_END.split("It costs 3.50 now. Really?  Yes!Go on") == ["It costs 3.50 now.", "Really?", "Yes!Go on"]


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("Dr. Patel said so. St. Louis is far.", ["Dr. Patel said so.", "St. Louis is far."]),
        ("Mr. and Mrs. Lee, Jr. came. Ms. Ortiz too.", ["Mr. and Mrs. Lee, Jr. came.", "Ms. Ortiz too."]),
        ("Bring snacks, e.g. fruit, i.e. healthy. Okay.", ["Bring snacks, e.g. fruit, i.e. healthy.", "Okay."]),
        ("At 6 p.m. on Friday. Or 7 a.m. Then go.", ["At 6 p.m. on Friday.", "Or 7 a.m.", "Then go."]),
    ],
)
def test_sentences_do_not_end_after_common_abbreviations(text, sentences):
    assert SENTENCE_END.split(text) == sentences


def test_words_keep_inner_apostrophes_and_hyphens_and_leave_out_numbers():
    assert WORD.findall("Don't skip the check-up at 3pm, Chris's idea: 42 laps") == [
        "Don't",
        "skip",
        "the",
        "check-up",
        "at",
        "pm",
        "Chris's",
        "idea",
        "laps",
    ]


def test_query_terms_keep_numbers_and_possessives():
    assert TERM.findall("What did Caroline's team win in 2022?") == [
        "What",
        "did",
        "Caroline's",
        "team",
        "win",
        "in",
        "2022",
    ]


def test_content_words_leave_out_talk_function_and_short_words():
    text = "Um, yeah, I think the dentist said my crown is cracked, you know? So we go to it."

    assert content_words(text) == ["dentist", "crown", "cracked"]


def test_cluster_labels_also_leave_out_numbers_and_vague_adverbs_that_titles_still_count():
    text = "We still need two new tires, always something"

    assert content_words(text, LABEL_STOP_WORDS) == ["need", "new", "tires"]
    assert content_words(text, TITLE_STOP_WORDS) == ["still", "need", "two", "new", "tires", "always", "something"]
