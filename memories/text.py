"""The words of a transcript: turns and their speakers, sentences, words, and the word lists that
say which words name no topic and which make a question. Defined once here for the pipeline
(chunking, the local extractor) and for search (BM25, cluster labels, evaluation).

Word lists, each word kind defined once:
- FUNCTION_WORDS (English articles, pronouns, auxiliaries, prepositions, conjunctions), of which
  COMMON_WORDS are the commonest (Lucene's English stop list, as bm25s has it);
- TALK_WORDS: what people say in any conversation (fillers, backchannels, vague verbs and nouns);
- MORE_STOP_WORDS: more words that name no topic (adverbs, quantifiers, number words);
- QUESTION_WORDS: what makes a question without saying what it asks about.
The stop words of each job are made of them: TITLE_STOP_WORDS (the local extractor's titles and
overviews), LABEL_STOP_WORDS (cluster labels), SEARCH_STOP_WORDS (BM25). They are narrower where the
LoCoMo figures were measured with a narrower list: BM25 leaves out only the commonest function
words, and titles still count MORE_STOP_WORDS.
"""

import re

# "Dr. Patel: " at the start of a turn; group 1 is the speaker.
SPEAKER = re.compile(r"^([^:\n]{1,40}):\s+")
# The same, at the start of every line of a whole transcript.
SPEAKER_LINES = re.compile(SPEAKER.pattern, re.MULTILINE)
# The space after a sentence's end ("It's done. Next" splits before "Next"), but not after a title
# or a Latin abbreviation ("Dr. Patel", "St. Louis", "e.g. this"), nor after "a.m." or "p.m." unless
# a capital follows ("at 6 p.m. on Friday" is one sentence, "at 6 p.m. Then" two).
ABBREVIATIONS = ("Dr", "St", "Mr", "Mrs", "Ms", "Jr", "e.g", "i.e", "E.g", "I.e")
SENTENCE_END = re.compile(
    r"(?<=[.!?])"
    + "".join(rf"(?<!\b{re.escape(a)}\.)" for a in ABBREVIATIONS)
    + r"(?:(?<![ap]\.m\.)\s+|(?<=[ap]\.m\.)\s+(?=[A-Z]))"
)
# A word: a letter, then letters, apostrophes and hyphens ("don't", "check-up"; also "kids'").
WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
# A term of a query: letters, digits and apostrophes ("Caroline's", "2022").
TERM = re.compile(r"[A-Za-z0-9']+")

COMMON_WORDS = frozenset(
    """
a an and are as at be but by for if in into is it no not of on or such that the their then there
these they this to was will with
""".split()
)
FUNCTION_WORDS = COMMON_WORDS | frozenset(
    """
about above after again against all also am any aren't because been before being below between
both can can't could couldn't did didn't do does doesn't doing don't down during each few from
further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
him himself his how how's i i'd i'll i'm i've isn't it's its itself me more most mustn't my myself
nor now off once only other ought our ours ourselves out over own same she she'd she'll she's
should shouldn't so some than that's theirs them themselves there's they'd they'll they're they've
those through too under until up us very wasn't we we'd we'll we're we've were weren't what what's
when when's where where's which while who who's whom why why's won't would wouldn't you you'd
you'll you're you've your yours yourself yourselves
""".split()
)
TALK_WORDS = frozenset(
    """
actually anyway came come get gets getting go goes going gonna good got gotta great hey hi hmm just
kinda know let let's like lot lots maybe mean mhm oh ok okay one pretty really right said say says
see stuff sure thank thanks thing things think uh um want well went yeah yep yes
""".split()
)
QUESTION_WORDS = frozenset(
    """
what when where who whom whose which why how did do does is are was were the a an of to in on at
for with about and or has have had be been being
""".split()
)

# More words that name no topic (adverbs, quantifiers, indefinite pronouns, number and order words,
# a few of talk): cluster labels leave them out, the local extractor's titles still count them (its
# LoCoMo figures were measured so).
MORE_STOP_WORDS = frozenset(
    """
alright bit guess
across afterwards almost alone along already although always among amongst another anyhow anyone
anything anywhere around became become becomes becoming beforehand behind beside besides beyond
cannot either else elsewhere enough etc even ever every everyone everything everywhere except
former formerly hence however indeed latter latterly least less many may meanwhile might moreover
mostly much must namely neither never nevertheless nobody none noone nothing nowhere often onto
others otherwise per perhaps please rather seem seemed seeming seems several since somehow someone
something sometime sometimes somewhere still thence thereafter thereby therefore therein thereupon
though throughout thru thus together toward towards upon via whatever whence whenever whereafter
whereas whereby wherein whereupon wherever whether whither whoever whose within without yet
two three four five six seven eight nine ten eleven twelve fifteen twenty forty fifty sixty hundred
first third last next
""".split()
)

TITLE_STOP_WORDS = FUNCTION_WORDS | TALK_WORDS  # what a title is never about
LABEL_STOP_WORDS = TITLE_STOP_WORDS | MORE_STOP_WORDS  # what a cluster label is never about
SEARCH_STOP_WORDS = COMMON_WORDS | QUESTION_WORDS  # what BM25 leaves out of memories and queries


def split_turns(transcript: str) -> list[str]:
    """The transcript's non-blank lines, stripped: one turn each."""
    return [line.strip() for line in transcript.splitlines() if line.strip()]


def content_words(text: str, stop: frozenset = TITLE_STOP_WORDS) -> list[str]:
    """The words of `text` that may name a topic: lowercased, three letters or more, no stop word."""
    return [w for w in (m.lower() for m in WORD.findall(text)) if len(w) > 2 and w not in stop]
