from memories.parts.chunking import windows


def words(texts: list[str]) -> list[int]:
    """A stand-in tokenizer: one token per word."""
    return [len(t.split()) for t in texts]


def test_windows_pack_whole_turns_up_to_the_budget():
    transcript = "\n".join(f"A: {'word ' * 9}end" for _ in range(10))  # 11 tokens a turn

    result = windows(transcript, max_tokens=40, count_tokens=words)

    assert [len(w.splitlines()) for w in result] == [3, 3, 3, 1]
    assert "\n".join(result) == transcript


def test_a_turn_longer_than_a_window_is_split_at_sentences_and_keeps_its_speaker():
    long_turn = "Ben: " + " ".join(f"Sentence number {i} is here." for i in range(30))  # 150 words

    result = windows(f"Alice: hi.\n{long_turn}\nAlice: bye.", max_tokens=40, count_tokens=words)

    assert all(sum(words([w])) <= 40 for w in result)
    pieces = [line for w in result for line in w.splitlines()]
    assert all(line.startswith(("Alice: ", "Ben: ")) for line in pieces)
    assert " ".join(p.removeprefix("Ben: ") for p in pieces if p.startswith("Ben")) == long_turn.removeprefix("Ben: ")


def test_a_sentence_longer_than_a_window_is_split_between_words():
    result = windows("Ben: " + "word " * 500, max_tokens=50, count_tokens=words)

    assert len(result) >= 11
    assert all(sum(words([w])) <= 50 for w in result)
    assert sum(w.count("word") for w in result) == 500


def test_a_blank_transcript_has_no_windows():
    assert windows("  \n \n", max_tokens=10, count_tokens=words) == []
