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
from memories.text import (
    MORE_STOP_WORDS,
    SENTENCE_END,
    SPEAKER,
    TITLE_STOP_WORDS,
    WORD,
    content_words,
    split_turns,
)

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
excited appreciate haha lol yay omg cute sweet inspiring perfect
""".split()
)
# A title's longest length in words.
TITLE_WORDS = 10
# A label before what is said ('Title: "...'), and quote marks.
LABEL = re.compile(r"^[A-Z][a-z]+(?:\s[a-z]+)?:\s+")
QUOTES = re.compile(r"[\"“”]")
# Stage directions in a transcript: "[laughs]", "[shares photo: ...]".
BRACKETED = re.compile(r"\s*\[[^\]]*\]\s*")
POSSESSIVE = re.compile(r"'s$")
# A headline's longest length in characters.
HEADLINE_CHARS = 60


def _forms(words: str) -> frozenset[str]:
    """Each verb with its -s, -ed and -ing forms ("book": books, booked, booking)."""
    forms = set()
    for word in words.split():
        stem = word[:-1] if word.endswith("e") else word
        forms |= {word, word + "s", stem + "ed", stem + "ing", word + "es"}
    return frozenset(forms)


# Common verbs and their forms, irregular ones too: a headline names things, and with no
# part-of-speech tagger at hand a verb is known by this list ("the doctor wants" is no phrase).
VERB_BASES = frozenset(
    """ask book bring buy call check decide drive eat feel figure finish fix forget give hang hear
help hope keep leave like look love make meet miss move need pay pick play put read register
remember remind run send sign start stay stop take talk tell try turn use wait walk want work write worry plan wonder
happen guess mention agree promise suppose sound seem believe expect handle deal skip end review think cut
suggest report ship push open close cover last die kill bet care""".split()
)
VERBS = _forms(" ".join(VERB_BASES)) | frozenset(
    """said told got gotten went gone made took taken gave given came saw seen thought wrote written
bought brought felt found kept left met paid sent ran heard held sat spent built began begun
done does doing did knew known understood became""".split()
)
# Words of time: they date a conversation, they do not name what it is about.
TIME_WORDS = frozenset(
    """today tomorrow tonight yesterday day days week weeks weekend weekends morning mornings
afternoon evening night nights month months year years time times minute minutes hour hours
monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays
fridays saturdays sundays january february march april june july august september october
november december noon midnight am pm""".split()
)
# Nouns that name nothing in particular.
VAGUE = frozenset(
    """way kind sort part point idea question guys people person everybody folks bunch couple
piece side end start number half thousand million percent dollars bucks pounds minus due
ha bye sorry god cheers back mr mrs ms dr jr st""".split()
)
# Common adjectives of talk: they describe, a headline names ("fine", "whole", "big").
ADJECTIVES = frozenset(
    """fine slow fast long short weird whole big little small large huge new old bad worse better
best real final clear late early hard easy cheap busy nervous excellent top free full ready able
sorry true wrong different same important special extra quick happy sad tired sick worth""".split()
)
# Words a phrase ends at: the determiners, possessive pronouns and prepositions before a noun.
DETERMINERS = frozenset("a an the my our your his her their this that these those".split())
# A token of a sentence: a word (with its apostrophes and hyphens, or letters and digits: "10K",
# "70th") or a mark that ends a phrase.
ORDINAL_WORD = re.compile(r"\d+(?:st|nd|rd|th|s)?")
TOKEN = re.compile(r"[^\W_][\w'’-]*|[^\w\s]")

ACTION_PATTERNS = [
    re.compile(r"\b(?:i|we)\s+(?:really\s+|still\s+|also\s+)?(?:need|have|got)\s+to\s+(?P<task>.+)", re.I),
    REMIND := re.compile(r"\bremind\s+me\s+(?:to\s+|that\s+|about\s+)?(?P<task>.+)", re.I),
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

# A task whose object points elsewhere: "put this in ...", "go through that", "write this down".
POINTING = re.compile(r"^\w+(?:\s+(?:through|over|up|down|out|in|on))?\s+(this|that|these|those)\b", re.I)
# What a task says after it that is no part of it: "... before I forget".
AFTERTHOUGHT = re.compile(r"\s+(?:before|so)\s+(?:i|we)\s+(?:don't\s+)?forget\b.*$", re.I)

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
HOUR_WORDS = {
    w: i for i, w in enumerate("one two three four five six seven eight nine ten eleven twelve".split(), start=1)
}
HOUR = rf"(?:\d{{1,2}}|{'|'.join(HOUR_WORDS)})"
# A daypart said after the hour: "8 in the morning", "six in the evening".
MERIDIEM = r"(?:am|pm|a\.m\.|p\.m\.|in\s+the\s+(?:morning|afternoon|evening)|at\s+night)"
# A time said so that it is one: "6pm", "10:30", "half past nine", "nine-thirty", "9 o'clock", "noon".
CLOCK_TIME = (
    rf"(?:(?:half|quarter)\s+(?:past|after|to)\s+{HOUR}(?:\s*{MERIDIEM})?|"
    rf"{HOUR}(?::\d{{2}}|[\s-](?:thirty|fifteen|forty-five)|\s+o'clock)(?:\s*{MERIDIEM})?|"
    rf"\d{{1,2}}\s*{MERIDIEM}|{HOUR}\s+{MERIDIEM}|noon|midnight)"
)
# After "at", "around" or "by", a bare hour is a time too ("at 8", "at, like, nine").
TIME = rf"(?:{CLOCK_TIME}|{HOUR}(?=\s|[.,!?]|$))"
AT = r"(?:at|around)(?:,?\s+(?:like|about),?)?"
WHEN = re.compile(
    rf"\b(?:on\s+)?(?P<date>{DATE})(?:\s*,?\s*(?:{AT}|by)\s+(?P<time>{TIME})|\s*,\s*(?P<time3>{CLOCK_TIME}))?"
    rf"|\b{AT}\s+(?P<time2>{TIME})(?:\s+(?:on\s+)?(?P<date2>{DATE}))?"
    rf"|\b(?P<time4>\d{{1,2}}(?::\d{{2}})?\s*(?:am|pm|a\.m\.|p\.m\.))",
    re.IGNORECASE,
)
CLOCK = re.compile(
    rf"(?:(?P<part>half|quarter)\s+(?P<rel>past|after|to)\s+)?(?P<h>{HOUR})"
    rf"(?::(?P<m>\d{{2}})|[\s-](?P<mw>thirty|fifteen|forty-five)|\s+o'clock)?\s*(?P<ap>{MERIDIEM})?",
    re.I,
)
MINUTE_WORDS = {"thirty": 30, "fifteen": 15, "forty-five": 45}
EVENT_WORDS = re.compile(
    r"\b(?:meeting|meet|appointment|call|dinner|lunch|breakfast|brunch|party|recital|game|class|"
    r"lesson|session|interview|flight|trip|visit|check-?up|review|standup|stand-up|sync|demo|"
    r"presentation|birthday|concert|deadline|reservation|pick\s?up|drop\s?off|practice|match|"
    r"appointment|cleaning|exam|conference|wedding|show|workshop|coffee|drinks|date|surgery|"
    r"consultation|inspection|delivery|showing|tour|playdate|rehearsal|webinar|due|schedule[d]?|"
    r"book(?:ed)?|calendar|see\s+you|come\s+over|pick\s+(?:you|her|him|them)\s+up)\b",
    re.IGNORECASE,
)
# Nouns that name an event, as `_stem` gives them: a noun phrase ending in one names the event.
EVENT_NOUNS = frozenset(
    """meeting appointment call dinner lunch breakfast brunch party recital game clas lesson session
interview flight trip visit checkup check-up review standup stand-up sync demo presentation birthday
concert deadline reservation practice match cleaning exam conference wedding show workshop coffee
drink date surgery consultation inspection delivery showing tour playdate rehearsal webinar launch
retro race closing kickoff lab recheck test shift offer""".split()
)
# Verbs that are events ("I'll call the yard Monday" -> "Call: yard").
EVENT_VERBS = {"call": "Call", "meet": "Meeting", "review": "Review", "visit": "Visit", "interview": "Interview"}
# Where a sentence divides into clauses.
CLAUSE = re.compile(r"\s*(?:[,;:]|\s[-–—])\s+|\s+(?:so|but|because|since|or|and then)\s+", re.I)
# What a speaker says before naming an event: "and I have a", "there's a", "we'll".
EVENT_LEAD = re.compile(
    r"^(?:(?:and|so|then|but|also|plus)\s+)*"
    r"(?:(?:i|we|you|he|she|they)(?:'ll|'ve|'m|'re|'d)?\s+(?:(?:have|has|got|need|will|am|are|is|was|were)\s+"
    r"(?:to\s+|thinking\s+)?)?|there(?:'s|\s+is|\s+are)\s+|it's\s+|'s\s+|(?:is|are)\s+)?"
    r"(?:(?:a|an|the|my|our|your|his|her|their)\s+)?",
    re.I,
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
        speakers = _speakers(turns)
        title, overview = _summary(sentences, speakers)
        category = self.categorize(transcript)
        return Extraction(
            title=title,
            overview=overview,
            emoji=EMOJI[category],
            category=category,
            action_items=_action_items(sentences, started_at),
            events=_events(sentences, started_at, speakers, title.split(": ")[0]),
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
    central = [s for _, _, s in titles[:2]]
    title = _topic_headline(sentences, central, speakers) or _headline(
        _drop_vocatives(titles[0][2], speakers), frequency
    )
    return title, overview


def _stem(word: str) -> str:
    """ "Crowns", "crown's" and "crown" are one word."""
    word = POSSESSIVE.sub("", word.lower().replace("’", "'"))
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


# Words that never name a thing in a noun phrase (`_noun_phrases`), besides the speakers' names.
NOT_NAMING = TITLE_STOP_WORDS | MORE_STOP_WORDS | REACTIONS | TIME_WORDS | VAGUE | ADJECTIVES


def _noun_phrases(sentence: str, speakers: set[str] = frozenset()) -> list[list[str]]:
    """The runs of words in `sentence` that name things: words that are neither function, talk,
    time or vague words, nor common verbs (a verb right after a determiner is a noun: "a call"),
    nor the speakers' names, nor reactions; a mark, a number alone or any other word ends a run
    ("For the permanent crown the doctor wants you back" -> "permanent crown", "doctor")."""
    phrases, run, previous = [], [], ""
    for token in TOKEN.findall(BRACKETED.sub(" ", sentence)):
        lower = POSSESSIVE.sub("", token.lower().replace("’", "'"))
        verb = lower in VERBS or (lower.endswith("ed") and len(lower) > 4)
        adverb = lower.endswith("ly") and lower != "family" and not token[:1].isupper()
        naming = (
            any(ch.isalpha() for ch in token)
            and len(lower) > 1
            and lower not in NOT_NAMING
            and lower not in speakers
            and not ORDINAL_WORD.fullmatch(lower)
            and not adverb
            and (not verb or previous in DETERMINERS or (run and lower in EVENT_NOUNS))
        )
        if naming:
            run.append(token)
        elif run:
            phrases.append(run[-4:])
            run = []
        previous = token.lower()
    if run:
        phrases.append(run[-4:])
    return phrases


def _topic_headline(sentences: list[str], central: list[str], speakers: set[str]) -> str:
    """A headline: the conversation's topic, then the central sentences' key phrase ("Permanent
    crown: seat appointment"). A phrase weighs the number of sentences that say each of its words
    (so a phrase of words said throughout the conversation weighs most); the topic is the heaviest
    phrase of the conversation, the key phrase the heaviest of the central sentences that shares no
    word with the topic. When no word is said twice, the longest phrase of the central sentence;
    empty when no sentence names a thing."""
    said = Counter(w for s in sentences for w in {_stem(t) for p in _noun_phrases(s, speakers) for t in p})

    def repeated(word: str) -> bool:
        return said[_stem(word)] > 1

    def weight(phrase: list[str]) -> tuple[int, int]:
        return sum(said[_stem(w)] for w in phrase if repeated(w)), len(phrase)

    order = {}
    for sentence in sentences:
        for phrase in _noun_phrases(sentence, speakers):
            while len(phrase) > 1 and not repeated(phrase[0]):  # "barely conversational"
                phrase = phrase[1:]
            order.setdefault(" ".join(phrase), phrase)
    if not order:
        return ""
    if max(said.values()) < 2:  # nothing said twice: the longest phrase of the central sentence
        phrases = [p for s in central[:1] for p in _noun_phrases(s, speakers)]
        return _title_case(max(phrases, key=len)) if phrases else ""
    topic = max(order.values(), key=weight)  # the first of the heaviest
    stems = {_stem(w) for w in topic}
    keys = [
        p
        for s in central
        for p in _noun_phrases(s, speakers)
        if not stems & {_stem(w) for w in p} and (len(p) > 1 or repeated(p[0]))
    ]
    common = {t for s in sentences for t in TOKEN.findall(s) if t.islower()}
    title = _phrase_text(topic, common)
    if keys:
        key = _phrase_text(max(keys, key=weight), common)
        if len(title) + len(key) + 2 <= HEADLINE_CHARS:
            title += ": " + key
    return title[:1].upper() + title[1:]


def _phrase_text(phrase: list[str], common: set[str]) -> str:
    """The words as said; a word capitalised only because it began a sentence is lowercased
    ("Direction" when "direction" is said too), a name is kept ("Pacific Carton")."""
    first = phrase[0].lower() if phrase[0].lower() in common and phrase[0][1:].islower() else phrase[0]
    return " ".join([first, *phrase[1:]])


def _headline(sentence: str, frequency: Counter) -> str:
    """The sentence without a label ('Title: "...'), quote marks or fillers; when it is long, its
    clause of four words or more that says most of what the conversation is about."""
    sentence = FILLERS.sub("", QUOTES.sub("", LABEL.sub("", sentence))).strip()
    clauses = [c.strip(" ,.!?") for c in CLAUSE.split(sentence) if 4 <= len(c.split()) <= TITLE_WORDS]
    if len(sentence.split()) > TITLE_WORDS and clauses:
        sentence = max(clauses, key=lambda c: sum(frequency[w] for w in set(content_words(c))) * _title_fitness(c))
    return _short_title(sentence)


def _title_fitness(sentence: str, speakers: set[str] = frozenset()) -> float:
    """Titles read best from whole statements of a few words that name things (names), not from
    sentences that lean on what was said before ("It ...", "Then ..."), exclamations, lists
    ("Monday the 24th, 10:30, crown"), figures ("Two by eight is $21.48") or labels ('Title: "...')."""
    words = sentence.split()
    fitness = 1.0 if 4 <= len(words) <= 14 else 0.5
    if words[0].lower().strip(",") in LEANING:
        fitness *= 0.5
    if sentence.endswith("!"):
        fitness *= 0.6
    if LABEL.match(sentence) or QUOTES.search(sentence):
        fitness *= 0.5
    pieces = sentence.split(", ")
    if len(pieces) > 2 and len(words) / len(pieces) < 4:
        fitness *= 0.3
    if re.match(rf"[$\d]|{NUMBER_WORD}\b", sentence, re.I):
        fitness *= 0.5
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


def _short_title(sentence: str, words: int = TITLE_WORDS) -> str:
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
    """Tasks said as such; a task whose object is "this" or "that" ("Put this in my calendar
    before I forget") names it with the sentence it points to ("...: Monday the 24th, 10:30, crown");
    a reminder that names only a time ("Remind me tonight at nine") takes its task from the
    statement before it ("Just the outline (tonight at nine)"), and is dropped if there is none."""
    items: list[ActionItemData] = []
    seen: set[str] = set()
    for index, sentence in enumerate(sentences):
        if sentence.endswith("?"):
            continue
        for pattern in ACTION_PATTERNS:
            match = pattern.search(sentence)
            if not match:
                continue
            task = FILLERS.sub("", match.group("task")).strip(" .!,;")
            due = None
            if len(task.split()) < 3 or NOT_TASKS.match(task):
                break
            if pattern is REMIND and not [w for w in content_words(WHEN.sub(" ", task)) if w not in TIME_WORDS]:
                # "remind me tonight at nine": of what?
                near = next((s for s in sentences[max(index - 2, 0) : index][::-1] if _noun_phrases(s)), "")
                if not near or near.endswith("?"):
                    break
                due = _when(sentence, base)
                task = near.rstrip(".!")
                if due is not None:
                    task += f" ({WHEN.search(sentence).group().strip()})"
            key = task.lower()
            if key not in seen:
                seen.add(key)
                pointer = POINTING.match(task)
                if pointer:
                    task = AFTERTHOUGHT.sub("", task)
                    step = 1 if pointer.group(1).lower() in ("this", "these") else -1
                    near = sentences[index + step] if 0 <= index + step < len(sentences) else ""
                    if len(content_words(near)) > 1 and not near.endswith("?"):
                        task += ": " + near.rstrip(".!")
                when = due or _when(task, base)
                items.append(ActionItemData(description=task[0].upper() + task[1:], due_at=when))
            break
    return items


def _events(sentences: list[str], base: datetime, speakers: set[str] = frozenset(), topic: str = "") -> list[EventData]:
    """A future time expression in a sentence that, with its neighbours, plans something. A clock
    time said just after a day ("this Saturday ... it starts at 2pm", "tomorrow night ... 6pm")
    completes that day's event. The title is what the event's own clause names; an event said
    again at the same time ("Perfect, March 24th, 10:30 ... Monday the 24th, 10:30, crown") keeps
    the first title its own clause gave."""
    events: list[EventData] = []
    borrowed: list[EventData] = []  # events whose title came from an event word nearby
    last: tuple[int, EventData, bool] | None = None  # sentence index, event, whether a clock time was said
    for index, sentence in enumerate(sentences):
        found = _when_parts(sentence, base)
        if found is None:
            continue
        start, dated, timed = found
        if (
            timed
            and last
            and not last[2]
            and index - last[0] <= 3
            and (not dated or start.date() == last[1].start.date())
        ):
            event = last[1]
            event.start = event.start.replace(hour=start.hour, minute=start.minute)
            event.description += " " + _end(sentence)
            last = (index, event, True)
            continue
        if start < base:
            continue
        context = sentences[max(index - 1, 0) : index + 2]
        planning = [s for s in context if EVENT_WORDS.search(s)]
        if not planning:
            continue
        name = _event_name(sentence, WHEN.search(sentence), speakers)
        same = next((e for e in events if e.start == start), None)
        if same is not None:
            if name and same in borrowed:
                same.title = name
                borrowed.remove(same)
            continue
        event = EventData(
            title=name or _event_word_phrase(planning, speakers) or topic or "Event",
            start=start,
            description=" ".join(_end(s) for s in context if s is sentence or s in planning),
            duration_minutes=_duration(" ".join(context)),
        )
        if not name:
            borrowed.append(event)
        events.append(event)
        last = (index, event, timed)
    return events


def _event_name(sentence: str, span: re.Match, speakers: set[str] = frozenset()) -> str:
    """A noun phrase that names the event, from the clause of the time expression ("Mom's party is
    tomorrow night" -> "Mom's party", "I have a dentist appointment Monday" -> "Dentist appointment",
    "I'll call the listing agent tomorrow" -> "Call: listing agent"); when that clause names nothing,
    the clause beside it, one with an event word first, else the one after it ("Monday the 24th,
    10:30, crown"); then the phrase of the sentence nearest the time. A phrase ending in an event
    word ("architecture review") comes first. Empty when the sentence names nothing."""
    clauses = CLAUSE.split(sentence[: span.start()] + "\0" + sentence[span.end() :])
    at = next(i for i, clause in enumerate(clauses) if "\0" in clause)
    beside = sorted([*clauses[at + 1 : at + 2], *clauses[max(at - 1, 0) : at]], key=lambda c: not EVENT_WORDS.search(c))
    for clause in [clauses[at], *beside]:
        text = EVENT_LEAD.sub("", FILLERS.sub("", " ".join(WHEN.sub(" ", clause.replace("\0", " ")).split())))
        phrases = _noun_phrases(text, speakers)
        named = next((p for p in phrases if _stem(p[-1]) in EVENT_NOUNS), None)
        if named:
            return _title_case(named)
        verb = next(iter(WORD.findall(text)), "").lower()
        if verb in EVENT_VERBS and phrases:
            return f"{EVENT_VERBS[verb]}: {' '.join(phrases[0])}"
        if phrases:
            return _title_case(phrases[0])
    middle = (span.start() + span.end()) / 2
    found = [(abs(m.start() - middle), m.group()) for m in TOKEN.finditer(sentence)]
    phrases = _noun_phrases(WHEN.sub(lambda m: " " * len(m.group()), sentence), speakers)
    if not phrases:
        return ""
    words = {w for p in phrases for w in p}
    near = min((d for d, w in found if w in words), default=0)
    return _title_case(next(p for p in phrases if any(d == near and w in p for d, w in found)))


def _title_case(phrase: list[str]) -> str:
    """ "inspection's" (is) -> "Inspection"."""
    text = POSSESSIVE.sub("", " ".join(phrase).replace("’", "'"))
    return text[:1].upper() + text[1:]


def _event_word_phrase(sentences: list[str], speakers: set[str] = frozenset()) -> str:
    """The first noun phrase of `sentences` that ends in an event word ("the seat appointment")."""
    for sentence in sentences:
        for phrase in _noun_phrases(sentence, speakers):
            if _stem(phrase[-1]) in EVENT_NOUNS:
                return _title_case(phrase)
    return ""


def _when(text: str, base: datetime) -> datetime | None:
    """The first time expression in `text`, as a datetime relative to `base`, or None."""
    found = _when_parts(text, base)
    return found[0] if found else None


def _when_parts(text: str, base: datetime) -> tuple[datetime, bool, bool] | None:
    """The first time expression in `text`: (when, whether it named a day, whether a clock time)."""
    import dateparser

    match = WHEN.search(text)
    if not match:
        return None
    date_text = match.group("date") or match.group("date2")
    time_text = match.group("time") or match.group("time2") or match.group("time3") or match.group("time4")
    if not date_text and not (time_text and re.fullmatch(CLOCK_TIME, time_text, re.I)):
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
    hour, minute, timed = _clock(time_text, date_text or "")
    if hour is None:
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


def _clock(time_text: str | None, date_text: str) -> tuple[int | None, int, bool]:
    """The hour and minute said (a bare hour read by the daypart named, else 7 to 11 as morning
    and 12 to 6 as afternoon), and whether a clock time was said; else the daypart's hour."""
    daypart = next((hour for part, hour in DAYPART_HOUR.items() if part in date_text.lower()), None)
    if time_text:
        lowered = time_text.lower()
        if lowered in ("noon", "midnight"):
            return (12 if lowered == "noon" else 0), 0, True
        match = CLOCK.match(lowered)
        if match:
            hour = HOUR_WORDS.get(match.group("h")) or int(match.group("h"))
            minute = int(match.group("m") or MINUTE_WORDS.get(match.group("mw") or "", 0))
            if match.group("part"):
                minute = 30 if match.group("part") == "half" else 15
                if match.group("rel") == "to":
                    hour, minute = hour - 1, 60 - minute
            said = (match.group("ap") or "").replace(".", "")
            evening = said in ("pm", "at night") or "afternoon" in said or "evening" in said
            if not said:
                evening = daypart >= 12 if daypart is not None else 1 <= hour <= 6
            if evening and hour < 12:
                hour += 12
            elif said and not evening and hour == 12:
                hour = 0
            if 0 <= hour <= 23 and 0 <= minute <= 59:
                return hour, minute, True
    return daypart, 0, False


def _duration(sentence: str) -> int:
    match = DURATION.search(sentence)
    if not match:
        return 60
    raw = match.group("n").lower()
    amount = 0.5 if raw.startswith("half") else WORD_NUMBERS.get(raw) or float(raw)
    minutes = amount * (60 if match.group("unit").lower().startswith("h") else 1)
    return max(int(minutes), 5)
