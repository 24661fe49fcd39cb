"""Transcript windows and snippets: whole turns packed up to a token budget.

A memory's own vector sees only the start of a long transcript (a model reads so many tokens),
and summary-only vectors lose names, dates and numbers; so a transcript longer than one window is
also cut into windows of consecutive whole turns that get vectors of their own. A turn longer than
a window is split at sentence ends (or, failing that, between words), each piece keeping its
speaker.

`windows` cuts text for an embedder that reads texts; late chunking (below) cuts the tokens of a
transcript that the local model reads once, for vectors pooled from its token states.
"""

import math
from collections.abc import Callable

from memories.text import SENTENCE_END, SPEAKER, split_turns

CountTokens = Callable[[list[str]], list[int]]


def windows(transcript: str, *, max_tokens: int, count_tokens: CountTokens) -> list[str]:
    """The transcript as windows of whole turns of at most `max_tokens` tokens each."""
    turns = split_turns(transcript)
    if not turns:
        return []
    pieces: list[tuple[str, int]] = []
    for turn, tokens in zip(turns, count_tokens(turns)):
        if tokens <= max_tokens:
            pieces.append((turn, tokens))
        else:
            pieces.extend(_split_turn(turn, max_tokens, count_tokens))

    result: list[str] = []
    current: list[str] = []
    used = 0
    for text, tokens in pieces:
        if current and used + tokens > max_tokens:
            result.append("\n".join(current))
            current, used = [], 0
        current.append(text)
        used += tokens
    if current:
        result.append("\n".join(current))
    return result


def _split_turn(turn: str, max_tokens: int, count_tokens: CountTokens) -> list[tuple[str, int]]:
    match = SPEAKER.match(turn)
    prefix = match.group(0) if match else ""
    body = turn[len(prefix) :]
    budget = max(max_tokens - (count_tokens([prefix])[0] if prefix else 0), 8)

    parts: list[tuple[str, int]] = []
    sentences = SENTENCE_END.split(body)
    for sentence, tokens in zip(sentences, count_tokens(sentences)):
        if tokens <= budget:
            parts.append((sentence, tokens))
        else:
            parts.extend(_split_words(sentence, tokens, budget, count_tokens))

    packed: list[tuple[str, int]] = []
    current: list[str] = []
    used = 0
    for text, tokens in parts:
        if current and used + tokens > budget:
            packed.append((prefix + " ".join(current), used))
            current, used = [], 0
        current.append(text)
        used += tokens
    if current:
        packed.append((prefix + " ".join(current), used))
    return packed


def _split_words(text: str, tokens: int, budget: int, count_tokens: CountTokens) -> list[tuple[str, int]]:
    words = text.split()
    if len(words) <= 1:
        return [(text, min(tokens, budget))]  # one enormous "word": the model truncates it
    groups = math.ceil(tokens / budget * 1.1)
    size = max(math.ceil(len(words) / groups), 1)
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    result: list[tuple[str, int]] = []
    for chunk, n in zip(chunks, count_tokens(chunks)):
        if n <= budget:
            result.append((chunk, n))
        else:
            result.extend(_split_words(chunk, n, budget, count_tokens))
    return result


# Late chunking: the transcript is tokenized once and read by the model in windows of whole turns;
# snippets and windows are ranges of its tokens, pooled from the token states of the model window
# that holds them. Ranges nest: snippets in windows in model windows, never across one.
Span = tuple[int, int]  # tokens [start, end) of the transcript
TURN, SENTENCE, WORD_START, INSIDE_WORD = 3, 2, 1, 0  # what a token starts: where a range may begin


def breaks(transcript: str, offsets: list[Span]) -> list[int]:
    """For each token (its character `offsets` in `transcript`), what it starts: a turn (a new
    line), a sentence (after . ! or ? and a space), a word (after a space), or nothing (a piece of
    a word, or punctuation stuck to it)."""
    levels = []
    previous_end = 0
    for start, end in offsets:
        gap = transcript[previous_end:start]
        if not levels or "\n" in gap:
            levels.append(TURN)
        elif gap.strip() == "" and gap and transcript[previous_end - 1] in ".!?":
            levels.append(SENTENCE)
        elif gap:
            levels.append(WORD_START)
        else:
            levels.append(INSIDE_WORD)
        previous_end = end
    return levels


def token_spans(levels: list[int], *, max_tokens: int, start: int = 0, end: int | None = None) -> list[Span]:
    """The tokens (those of [start, end)) as ranges of whole turns packed up to `max_tokens`; a
    longer turn is cut at sentence ends, a longer sentence between words, a longer word between
    its pieces."""
    end = len(levels) if end is None else end
    if start >= end:
        return []
    return pack(list(_units(levels, start, end, max_tokens, TURN)), max_tokens=max_tokens)


def _units(levels: list[int], start: int, end: int, max_tokens: int, level: int):
    cuts = [start, *(i for i in range(start + 1, end) if levels[i] >= level), end]
    for a, b in zip(cuts, cuts[1:]):
        if b - a <= max_tokens or level == INSIDE_WORD:
            yield (a, b)
        else:
            yield from _units(levels, a, b, max_tokens, level - 1)


def pack(spans: list[Span], *, max_tokens: int) -> list[Span]:
    """Consecutive ranges joined while the join holds at most `max_tokens` tokens."""
    packed: list[Span] = []
    for start, end in spans:
        if packed and end - packed[-1][0] <= max_tokens:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def span_text(transcript: str, offsets: list[Span], levels: list[int], span: Span) -> str:
    """The transcript's text of a range of tokens; a range that starts inside a turn is given the
    turn's speaker label ("Ben: "), as a window of a split turn is."""
    start, end = span
    text = transcript[offsets[start][0] : offsets[end - 1][1]]
    if levels[start] == TURN:
        return text
    line_start = transcript.rfind("\n", 0, offsets[start][0]) + 1
    match = SPEAKER.match(transcript[line_start:].lstrip())
    return f"{match.group(0)}{text}" if match else text


def nested_spans(
    levels: list[int], *, snippet_tokens: int, window_tokens: int, read_tokens: int
) -> tuple[list[Span], list[Span], list[Span]]:
    """(reads, windows, snippets) of a tokenized transcript: windows of whole turns of at most
    `window_tokens`, each cut into snippets of whole turns of at most `snippet_tokens` (0: none);
    reads, what the model reads at once (at most `read_tokens`): whole windows packed when a window
    fits, else each window's snippets packed."""
    windows = token_spans(levels, max_tokens=window_tokens)
    whole = window_tokens <= read_tokens
    reads = pack(windows, max_tokens=read_tokens) if whole else []
    snippets: list[Span] = []
    for start, end in windows:
        if snippet_tokens:
            snippets += token_spans(levels, max_tokens=min(snippet_tokens, read_tokens), start=start, end=end)
        if not whole:
            pieces = snippets if snippet_tokens else token_spans(levels, max_tokens=read_tokens, start=start, end=end)
            reads += pack([s for s in pieces if start <= s[0] < end], max_tokens=read_tokens)
    return reads, windows, snippets
