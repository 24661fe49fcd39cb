"""The `local` extractor: rules plus the local model, no network.

- category: the transcript (the mean of its windows' vectors, late-chunked) against a few example sentences of
  each category, with the local embedding model;
- title and overview: the transcript's most central sentences (word-frequency scoring, after
  Luhn; reactions such as "wow, awesome", the speakers' names and stage directions such as
  "[laughs]" do not count), the title cut to a few words, without a vocative ("..., Caroline!");
- emoji: from the category;
- action items: sentences such as "I need to ...", "remind me to ...", "let's ...", "we should ...";
- events: time expressions ("next Tuesday at 3pm", "tomorrow morning", "March 3rd at 10:30"),
  parsed with `dateparser` relative to the memory's start, in sentences that plan something.
"""

import functools
import re
from collections import Counter
from datetime import datetime

import numpy as np

from memories.parts.embedders.local import LocalEmbedder
from memories.text import SENTENCE_END, SPEAKER, WORD, content_words, split_turns

from .base import EMOJI, ActionItemData, EventData, Extraction, Extractor

# What conversations of each category sound like; a transcript takes the category of the
# example closest to it.
CATEGORY_EXAMPLES = {
    "personal": [
        "I'm just going through my day, doing chores and errands around the house.",
        "I need to pick up groceries, do the laundry and return that package.",
    ],
    "education": [
        "In class today the teacher explained the homework for the exam.",
        "I'm studying for my Spanish lesson and practicing vocabulary.",
    ],
    "health": [
        "The doctor said my blood pressure is high and changed my medication.",
        "The dentist said I need a new crown, and the physiotherapist looked at my back pain.",
        "I haven't been sleeping well, I should run more and eat better.",
    ],
    "finance": [
        "Let's go over our budget, the bills, the mortgage payment and our savings.",
        "I need to file my taxes and call the bank about the loan.",
    ],
    "legal": [
        "The lawyer reviewed the contract and the lease agreement.",
        "We have a court date about the dispute and need to sign the will.",
    ],
    "philosophy": ["What is the meaning of life, free will and what makes an action ethical?"],
    "spiritual": ["We prayed at church and talked about faith and meditation."],
    "science": ["The experiment results in the lab, the physics and biology research paper."],
    "entrepreneurship": ["I have an idea for a startup, we could pitch it to investors and find our first customers."],
    "parenting": ["The kids need to be picked up from school, and bedtime has been a struggle with the toddler."],
    "romantic": ["Our anniversary date night, I love you, planning something romantic for my partner."],
    "travel": [
        "We booked the flights and the hotel for our trip, here's the itinerary.",
        "Pack the passports, the train leaves for the airport at six.",
    ],
    "inspiration": ["That story really motivated me to chase my goals and grow as a person."],
    "technology": [
        "The app keeps crashing, I need to update the software and fix the bug in the code.",
        "My laptop and phone setup, the new gadget and the wifi router.",
    ],
    "business": ["The client call about the sales deal, pricing, revenue and the contract renewal."],
    "social": [
        "Dinner with friends on Saturday, catching up over drinks at the party.",
        "Cheers, thanks for coming over to the housewarming, grab a drink and some food.",
    ],
    "work": [
        "Quick standup: the deploy is blocked on code review, the sprint demo is Friday.",
        "In the planning meeting we went over the launch timeline, the roadmap and who owns what.",
        "My one on one with my manager about the project deadline and the team.",
        "The hiring interview debrief, the candidate and the meeting with colleagues.",
    ],
    "sports": ["The game last night, the team scored, I went for a run and trained at the gym."],
    "politics": ["The election, the government's new policy and the politicians' debate."],
    "literature": ["Our book club discussed the novel, the author and our favorite chapters."],
    "history": ["The history of the ancient empire and what happened in the war centuries ago."],
    "architecture": ["The building's architecture, the facade and the design of the house renovation."],
    "music": ["Practicing the guitar, the concert, the band's new song and the album."],
    "weather": ["The forecast says heavy rain and a storm tomorrow, then snow and freezing temperatures."],
    "news": ["Did you see the news today, the headlines about current events?"],
    "entertainment": ["We watched a movie and the new TV series, and played a video game."],
    "psychology": ["I've been feeling anxious and stressed, my therapist helps me with my emotions."],
    "real": ["Buying a house, the real estate agent, the apartment viewing and the rent."],
    "design": ["The logo design, colors, fonts and the user interface layout."],
    "family": [
        "My mom's birthday, my sister called, the grandparents are visiting the family.",
        "Family dinner at my parents' place this weekend with the kids.",
        "Our daughter's recital and her school play, the whole family is coming to watch her.",
    ],
    "economics": ["Inflation, interest rates, the stock market and the economy."],
    "environment": ["Climate change, recycling, nature and protecting the environment."],
}

# Below this cosine, no example is close enough: `other`.
CATEGORY_MIN_SCORE = 0.12

# First words of a sentence that needs the one before it.
LEANING = frozenset(
    "it its it's that that's this these those they them then so and but or also which "
    "he she him her yeah yes no okay ok sure right well".split()
)
# Words a title should not end on.
DANGLING = frozenset(
    "a an the and or but so to of on at in for by with is are was were be will would we i "
    "you it that this my our your his her their as if".split()
)
FILLERS = re.compile(
    r"^(?:(?:um+|uh+|so|okay|ok|well|yeah|oh|and|but|right|anyway|like|hey|also|actually|"
    r"alright|you know|i mean|wow|woah|whoa|haha|ha|yay|omg)[,.!]?\s+)+",
    re.IGNORECASE,
)
# Reactions: frequent in chat, saying nothing of what a conversation is about (not scored).
REACTIONS = frozenset(
    """
wow woah whoa awesome cool amazing incredible love loved lovely sounds sound glad happy nice super
totally beautiful gorgeous stunning fantastic wonderful congrats congratulations proud fun exciting
excited appreciate haha lol yay omg cute sweet inspiring
""".split()
)
# Stage directions in a transcript: "[laughs]", "[shares photo: ...]".
BRACKETED = re.compile(r"\s*\[[^\]]*\]\s*")
POSSESSIVE = re.compile(r"'s$")

ACTION_PATTERNS = [
    re.compile(r"\b(?:i|we)\s+(?:really\s+|still\s+|also\s+)?(?:need|have|got)\s+to\s+(?P<task>.+)", re.I),
    re.compile(r"\bremind\s+me\s+(?:to\s+|that\s+|about\s+)?(?P<task>.+)", re.I),
    re.compile(r"\b(?:don'?t|do\s+not)\s+(?:let\s+me\s+)?forget\s+(?:to\s+|about\s+)?(?P<task>.+)", re.I),
    re.compile(r"\bmake\s+sure\s+(?:to\s+|you\s+|we\s+|i\s+)?(?P<task>.+)", re.I),
    re.compile(r"\blet'?s\s+(?P<task>.+)", re.I),
    re.compile(r"\bwe\s+should\s+(?:probably\s+|really\s+)?(?P<task>.+)", re.I),
]
# What follows "let's" / "we should" but is no task.
NOT_TASKS = re.compile(
    r"^(?:see|say|hope|be|face|just|not|for|with|it|that|this|so|know|think|talk|wait|keep|move|"
    r"get started|start|do (?:it|this|that))\b",
    re.I,
)

WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
ORDINAL = r"\d{1,2}(?:st|nd|rd|th)?"
DAYPART = r"(?:morning|afternoon|evening|night)"
NUMBER_WORD = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d+)"
DATE = (
    rf"(?:tomorrow(?:\s+{DAYPART})?|tonight|this\s+{DAYPART}|"
    rf"(?:this|next|coming)\s+(?:week(?:end)?|{WEEKDAY}(?:\s+{DAYPART})?)|"
    rf"(?:{WEEKDAY},?\s+)?(?:{MONTH}\.?\s+{ORDINAL}\b|(?:the\s+)?{ORDINAL}\s+of\s+{MONTH})|"
    rf"{WEEKDAY},?\s+the\s+{ORDINAL}\b|"
    rf"{WEEKDAY}(?:\s+{DAYPART})?|"
    rf"in\s+{NUMBER_WORD}\s+(?:days?|weeks?|months?))"
)
CLOCK_TIME = r"(?:\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}|noon|midnight)"
TIME = rf"(?:{CLOCK_TIME}|\d{{1,2}}(?=\s|[.,!?]|$))"
WHEN = re.compile(
    rf"\b(?:on\s+)?(?P<date>{DATE})(?:\s*,?\s*(?:at|around|by)\s+(?P<time>{TIME})|\s*,\s*(?P<time3>{CLOCK_TIME}))?"
    rf"|\b(?:at|around)\s+(?P<time2>{TIME})(?:\s+(?:on\s+)?(?P<date2>{DATE}))?",
    re.IGNORECASE,
)
CLOCK = re.compile(r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?", re.I)
EVENT_WORDS = re.compile(
    r"\b(?:meeting|meet|appointment|call|dinner|lunch|breakfast|brunch|party|recital|game|class|"
    r"lesson|session|interview|flight|trip|visit|check-?up|review|standup|stand-up|sync|demo|"
    r"presentation|birthday|concert|deadline|reservation|pick\s?up|drop\s?off|practice|match|"
    r"appointment|cleaning|exam|conference|wedding|show|workshop|coffee|drinks|date|surgery|"
    r"consultation|inspection|delivery|showing|tour|playdate|rehearsal|webinar|due|schedule[d]?|"
    r"book(?:ed)?|see\s+you|come\s+over|pick\s+(?:you|her|him|them)\s+up)\b",
    re.IGNORECASE,
)
DAYPART_HOUR = {"morning": 9, "afternoon": 14, "evening": 18, "night": 20, "tonight": 20}
DURATION = re.compile(
    r"\bfor\s+(?P<n>an?|one|two|three|half\s+an|\d+(?:\.\d+)?)\s*(?P<unit>hours?|hrs?|minutes?|mins?)\b",
    re.I,
)
WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}


@functools.cache
def _embedder() -> LocalEmbedder:
    """The local model, whatever EMBEDDER is: the category descriptions are in its space."""
    return LocalEmbedder()


@functools.cache
def _category_matrix() -> tuple[list[str], np.ndarray]:
    """The examples' vectors, and for each row the category it belongs to."""
    names = [name for name, examples in CATEGORY_EXAMPLES.items() for _ in examples]
    texts = [text for examples in CATEGORY_EXAMPLES.values() for text in examples]
    return names, _embedder().embed_documents(texts)


class LocalExtractor(Extractor):
    name = "local"

    def extract(self, *, transcript: str, started_at: datetime, language: str = "en") -> Extraction:
        turns = split_turns(transcript)
        sentences = _sentences(turns)
        title, overview = _summary(sentences, _speakers(turns))
        category = self.categorize(transcript)
        return Extraction(
            title=title,
            overview=overview,
            emoji=EMOJI[category],
            category=category,
            action_items=_action_items(sentences, started_at),
            events=_events(sentences, started_at),
            extractor=self.name,
        ).cleaned()

    def categorize(self, transcript: str) -> str:
        vectors = _embedder().embed_late(transcript).window_vectors  # the pipeline pools its snippets from this read
        if not len(vectors):
            return "other"
        centre = vectors.mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        names, matrix = _category_matrix()
        scores = matrix @ centre
        best = int(np.argmax(scores))
        return names[best] if scores[best] >= CATEGORY_MIN_SCORE else "other"


def _sentences(turns: list[str]) -> list[str]:
    """Every sentence of every turn, speaker label dropped, fillers trimmed."""
    result = []
    for turn in turns:
        match = SPEAKER.match(turn)
        body = turn[match.end() :] if match else turn
        for sentence in SENTENCE_END.split(body):
            sentence = FILLERS.sub("", sentence.strip()).strip()
            if sentence:
                result.append(sentence[0].upper() + sentence[1:])
    return result


def _speakers(turns: list[str]) -> set[str]:
    """The speakers' names (first words of the labels): everywhere in a chat, and no topic."""
    names = set()
    for turn in turns:
        match = SPEAKER.match(turn)
        if match and not match.group(1).lower().startswith("speaker"):
            names.update(w.lower() for w in WORD.findall(match.group(1))[:1])
    return names


def _summary(sentences: list[str], speakers: set[str] = frozenset()) -> tuple[str, str]:
    """The most central sentence as title (cut short), the top three, in order, as overview.
    Reactions ("Wow, sounds awesome!"), the speakers' names and stage directions do not count."""
    clean = [c for c in (FILLERS.sub("", BRACKETED.sub(" ", s).strip()).strip() for s in sentences) if c]
    sentences = clean or sentences
    ignore = REACTIONS | speakers

    def topic_words(sentence: str) -> list[str]:
        return [w for w in content_words(sentence) if w not in ignore]

    frequency = Counter(w for s in sentences for w in topic_words(s))
    if not frequency:
        text = " ".join(sentences)
        return _short_title(text), text
    candidates = []
    for index, sentence in enumerate(sentences):
        words = topic_words(sentence)
        if len(words) < 2 or sentence.endswith("?"):
            continue
        score = sum(frequency[w] for w in set(words)) / (len(words) ** 0.5)
        candidates.append((score, index, sentence))
    if not candidates:
        candidates = [(0.0, i, s) for i, s in enumerate(sentences)]
    ranked = sorted(candidates, key=lambda c: (-c[0], c[1]))
    top = sorted(ranked[:3], key=lambda c: c[1])
    overview = " ".join(_end(s) for _, _, s in top)
    titles = sorted(candidates, key=lambda c: (-c[0] * _title_fitness(c[2], speakers), c[1]))
    return _short_title(_drop_vocatives(titles[0][2], speakers)), overview


def _title_fitness(sentence: str, speakers: set[str] = frozenset()) -> float:
    """Titles read best from short statements that name things (names, numbers), not from
    sentences that lean on what was said before ("It ...", "Then ..."), nor exclamations."""
    words = sentence.split()
    fitness = 1.0 if 4 <= len(words) <= 14 else 0.5
    if words[0].lower().strip(",") in LEANING:
        fitness *= 0.5
    if sentence.endswith("!"):
        fitness *= 0.6
    named = sum(
        1
        for w in words[1:]
        if (w[:1].isupper() or any(ch.isdigit() for ch in w))
        and POSSESSIVE.sub("", w.lower().strip(",.!?")) not in speakers
    )
    return fitness * (1 + 0.25 * min(named, 4))


def _drop_vocatives(sentence: str, speakers: set[str]) -> str:
    """ "Wow Evan, that's an awesome painting" -> "That's an awesome painting"."""
    for name in map(re.escape, speakers):
        sentence = re.sub(rf"^(?:\w+\s+)?{name},\s+|,\s*{name}\b(?=[,.!?]|$)", "", sentence, flags=re.I)
    sentence = FILLERS.sub("", sentence).strip()
    return sentence[:1].upper() + sentence[1:] if sentence else sentence


def _short_title(sentence: str, words: int = 9) -> str:
    parts = sentence.rstrip(".!?").split()
    cut = len(parts) > words
    parts = parts[:words]
    while len(parts) > 1 and parts[-1].lower().strip(",;:-") in DANGLING:
        parts.pop()
    title = " ".join(parts).rstrip(",;:-") + ("…" if cut else "")
    return title[:1].upper() + title[1:]


def _end(sentence: str) -> str:
    return sentence if sentence[-1:] in ".!?" else sentence + "."


def _action_items(sentences: list[str], base: datetime) -> list[ActionItemData]:
    items: list[ActionItemData] = []
    seen: set[str] = set()
    for sentence in sentences:
        if sentence.endswith("?"):
            continue
        for pattern in ACTION_PATTERNS:
            match = pattern.search(sentence)
            if not match:
                continue
            task = FILLERS.sub("", match.group("task")).strip(" .!,;")
            if len(task.split()) < 3 or NOT_TASKS.match(task):
                break
            key = task.lower()
            if key not in seen:
                seen.add(key)
                when = _when(task, base)
                items.append(ActionItemData(description=task[0].upper() + task[1:], due_at=when))
            break
    return items


def _events(sentences: list[str], base: datetime) -> list[EventData]:
    """A future time expression in a sentence that, with its neighbours, plans something. A time
    said just after a day ("this Saturday ... it starts at 2pm") completes that day's event."""
    events: list[EventData] = []
    last: tuple[int, EventData, bool] | None = None  # sentence index, event, whether it has a time
    for index, sentence in enumerate(sentences):
        found = _when_parts(sentence, base)
        if found is None:
            continue
        start, dated, timed = found
        if not dated and timed and last and index - last[0] <= 2 and not last[2]:
            event = last[1]
            event.start = event.start.replace(hour=start.hour, minute=start.minute)
            event.description += " " + _end(sentence)
            last = (index, event, True)
            continue
        if start < base or any(e.start == start for e in events):
            continue
        context = sentences[max(index - 1, 0) : index + 2]
        planning = [s for s in context if EVENT_WORDS.search(s)]
        if not planning:
            continue
        span = WHEN.search(sentence)
        title = " ".join((sentence[: span.start()] + sentence[span.end() :]).split()).replace(" ,", ",")
        title = FILLERS.sub("", title).strip(" ,.!?")
        if len(content_words(title)) < 2:
            title = planning[0] if planning[0] is not sentence else title or sentence
        event = EventData(
            title=_short_title(title.strip(" ,.!?"), words=8),
            start=start,
            description=" ".join(_end(s) for s in context if s is sentence or s in planning),
            duration_minutes=_duration(" ".join(context)),
        )
        events.append(event)
        last = (index, event, timed)
    return events


def _when(text: str, base: datetime) -> datetime | None:
    """The first time expression in `text`, as a datetime relative to `base`, or None."""
    found = _when_parts(text, base)
    return found[0] if found else None


def _when_parts(text: str, base: datetime) -> tuple[datetime, bool, bool] | None:
    """The first time expression in `text`: (when, whether it named a day, whether a time)."""
    import dateparser

    match = WHEN.search(text)
    if not match:
        return None
    date_text = match.group("date") or match.group("date2")
    time_text = match.group("time") or match.group("time2") or match.group("time3")
    if not date_text and not (time_text and re.search(r"\d.*(?:am|pm|a\.m|p\.m)|:\d\d|noon", time_text, re.I)):
        return None  # a bare "at 5" names no day and may not be a time at all
    day = base
    day_of_month = re.fullmatch(rf"{WEEKDAY},?\s+the\s+(\d{{1,2}})(?:st|nd|rd|th)?", date_text or "", re.I)
    if day_of_month:  # "Friday the 16th": the next 16th (dateparser would take this month's, even past)
        day = _next_day_of_month(base, int(day_of_month.group(1)))
        if day is None:
            return None
    elif date_text:
        if re.search(MONTH, date_text, re.I):
            date_text = re.sub(rf"^{WEEKDAY},?\s+(?=\w)", "", date_text, flags=re.I)
        parsed = dateparser.parse(
            date_text,
            languages=["en"],
            settings={
                "RELATIVE_BASE": base.replace(tzinfo=None),
                "PREFER_DATES_FROM": "future",
                "RETURN_AS_TIMEZONE_AWARE": False,
            },
        )
        if parsed is None:
            return None
        day = parsed.replace(tzinfo=base.tzinfo)
    hour, minute = _clock(time_text, date_text or "")
    timed = hour is not None
    if not timed:
        if date_text and re.match(r"in\s", date_text, re.I):
            return day.replace(second=0, microsecond=0), True, False
        hour, minute = 9, 0
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0), bool(date_text), timed


def _next_day_of_month(base: datetime, day: int) -> datetime | None:
    year, month = base.year, base.month
    for _ in range(3):
        try:
            candidate = base.replace(year=year, month=month, day=day)
        except ValueError:  # no such day in this month
            candidate = None
        if candidate is not None and candidate.date() >= base.date():
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _clock(time_text: str | None, date_text: str) -> tuple[int | None, int]:
    if time_text:
        lowered = time_text.lower()
        if lowered == "noon":
            return 12, 0
        if lowered == "midnight":
            return 0, 0
        match = CLOCK.match(time_text)
        if match:
            hour, minute = int(match.group("h")), int(match.group("m") or 0)
            ampm = (match.group("ap") or "").replace(".", "").lower()
            if ampm == "pm" and hour < 12:
                hour += 12
            elif ampm == "am" and hour == 12:
                hour = 0
            elif not ampm and 1 <= hour <= 6:
                hour += 12  # "at 3" said of a meeting is 3 in the afternoon
            if 0 <= hour <= 23 and 0 <= minute <= 59:
                return hour, minute
    for part, hour in DAYPART_HOUR.items():
        if part in date_text.lower():
            return hour, 0
    return None, 0


def _duration(sentence: str) -> int:
    match = DURATION.search(sentence)
    if not match:
        return 60
    raw = match.group("n").lower()
    amount = 0.5 if raw.startswith("half") else WORD_NUMBERS.get(raw) or float(raw)
    minutes = amount * (60 if match.group("unit").lower().startswith("h") else 1)
    return max(int(minutes), 5)
