"""Transcript windows: whole turns packed up to a token budget.

A memory's own vector sees only the start of a long transcript (a model reads so many tokens),
and summary-only vectors lose names, dates and numbers; so a transcript longer than one window is
also cut into windows of consecutive whole turns that get vectors of their own. A turn longer than
a window is split at sentence ends (or, failing that, between words), each piece keeping its
speaker.
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
