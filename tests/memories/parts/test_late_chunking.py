"""Late chunking: the transcript read once by the local model, snippets and windows pooled from
its token states."""

import json

import numpy as np
import pytest
from prometheus_client import REGISTRY

from memories.models import MemoryVector
from memories.parts.chunking import breaks, nested_spans, span_text
from memories.parts.embedders.local import LocalEmbedder, _states_torch, _tokenizer
from memories.parts.extractors.local import _category_matrix
from memories.text import SPEAKER
from tests.support.transcripts import BUDGET, DENTIST, long_transcript

# A long word (wordpieces), accents, an emoji, CJK, and a turn longer than a snippet.
MIXED = (
    "Zoë: The naïve café 😀 near 日本語 school was antidisestablishmentarianism central.\n"
    "Ben: " + " ".join(f"Point {i} is about the crème brûlée budget." for i in range(6)) + "\n"
    "Zoë: Ok."
)


@pytest.fixture
def late(settings):
    """The local embedder with nothing read before (each test's settings make their own spans)."""
    LocalEmbedder._late_cache.clear()
    yield LocalEmbedder()
    LocalEmbedder._late_cache.clear()


def _spans(transcript: str, snippet_tokens: int, window_tokens: int = 200, read_tokens: int = 254):
    encoding = _tokenizer().encode(transcript, add_special_tokens=False)
    levels = breaks(transcript, encoding.offsets)
    reads, windows, snippets = nested_spans(
        levels, snippet_tokens=snippet_tokens, window_tokens=window_tokens, read_tokens=read_tokens
    )
    return encoding, levels, reads, windows, snippets


def test_pooled_snippet_vectors_are_the_mean_of_their_tokens_states_in_the_window_that_reads_them(late, settings):
    settings.SNIPPET_TOKENS, settings.CHUNK_TOKENS = 12, 40
    transcript = BUDGET
    chunks = late.embed_late(transcript)

    # Directly: the whole transcript (under 254 tokens) read by torch at once, each snippet's
    # tokens found by where its text lies in the transcript.
    encoding = _tokenizer().encode(transcript, add_special_tokens=False)
    states = _states_torch([101, *encoding.ids, 102])[1:-1]
    assert len(chunks.snippets) >= 8 and len(chunks.windows) >= 2
    at = 0
    for text, vector in zip(chunks.snippets, chunks.snippet_vectors):
        body = text if transcript.find(text, at) >= 0 else SPEAKER.sub("", text, count=1)  # a piece of a turn
        start = transcript.index(body, at)
        at = start + len(body)
        rows = [i for i, (a, b) in enumerate(encoding.offsets) if a >= start and b <= at]
        expected = states[rows].mean(axis=0)
        expected /= np.linalg.norm(expected)
        assert np.abs(vector - expected).max() < 1e-4
    # context counts: a snippet's vector is not the vector of its text read alone
    alone = late.embed_documents(chunks.snippets[:1])[0]
    assert float(alone @ chunks.snippet_vectors[0]) < 0.99


def test_token_offsets_give_each_snippet_its_own_text_words_and_speakers_whole():
    encoding, levels, reads, windows, snippets = _spans(MIXED, snippet_tokens=16)

    texts = [span_text(MIXED, encoding.offsets, levels, span) for span in snippets]
    assert all(b - a <= 16 for a, b in snippets)
    assert [a for a, _ in snippets] == [0, *(b for _, b in snippets[:-1])]  # every token once, in order
    assert snippets[-1][1] == len(encoding.ids)
    assert texts[0].startswith("Zoë: The naïve café 😀 near 日本語")  # unicode offsets are characters
    assert sum("antidisestablishmentarianism" in t for t in texts) == 1  # 8 wordpieces, one snippet
    assert not any(t.endswith(("antidis", "establishment")) for t in texts)
    ben = [t for t in texts if "Point" in t]
    assert len(ben) >= 3 and all(t.startswith("Ben: Point ") for t in ben)  # pieces of a long turn keep the speaker
    ben_turn = " ".join(t.splitlines()[0].removeprefix("Ben: ") for t in ben)
    assert ben_turn == MIXED.splitlines()[1].removeprefix("Ben: ")
    assert texts[-1].endswith("budget.\nZoë: Ok.")  # the short last turn packed with the piece before it
    assert all(any(ra <= a and b <= rb for ra, rb in reads) for a, b in windows)  # nested: never across a read
    assert all(any(wa <= a and b <= wb for wa, wb in windows) for a, b in snippets)


def test_reads_shorter_than_a_window_pack_its_snippets_and_never_cross_it():
    encoding, levels, reads, windows, snippets = _spans(long_transcript(20), snippet_tokens=32, read_tokens=64)

    assert all(b - a <= 64 for a, b in reads) and all(b - a <= 200 for a, b in windows)
    assert [a for a, _ in reads] == [0, *(b for _, b in reads[:-1])] and reads[-1][1] == len(encoding.ids)
    assert all(any(wa <= a and b <= wb for wa, wb in windows) for a, b in reads)
    assert all(any(ra <= a and b <= rb for ra, rb in reads) for a, b in snippets)
    assert len(reads) > len(windows)


def test_a_transcript_shorter_than_one_snippet_is_one_snippet_and_stores_none(late, remember):
    chunks = late.embed_late("Alice: Dinner at six?")
    assert chunks.snippets == ["Alice: Dinner at six?"] and chunks.windows == ["Alice: Dinner at six?"]
    assert late.embed_late("  \n ").snippets == []

    memory = remember("alice", "Alice: Dinner at six?")
    assert list(MemoryVector.objects.filter(memory=memory).values_list("kind", flat=True)) == ["memory"]


def test_a_memorys_own_vector_is_its_fields_plus_its_transcript_read_once(late, db):
    """Under late chunking the memory's own vector adds the transcript's vector (every token's
    states pooled, from the same reads) to its fields' vector: two conversations with one title
    and overview still differ by what was said."""
    from memories.models import Memory
    from memories.vectors import memory_vectors_build_many

    fields = {"uid": "alice", "title": "Permanent crown", "overview": "A dentist visit.", "category": "health"}
    one, two = Memory(id=1, transcript=DENTIST, **fields), Memory(id=2, transcript=BUDGET, **fields)
    built = memory_vectors_build_many(memories=[one, two])

    encoding = _tokenizer().encode(DENTIST, add_special_tokens=False)
    whole = _states_torch([101, *encoding.ids, 102])[1:-1].mean(axis=0)  # DENTIST: one read
    expected = late.embed_documents(["Permanent crown\nA dentist visit.\nCategory: health"])[
        0
    ] + whole / np.linalg.norm(whole)
    expected /= np.linalg.norm(expected)
    assert np.abs(built[1].vectors[0] - expected).max() < 1e-4
    assert float(built[1].vectors[0] @ built[2].vectors[0]) < 0.95


def test_onnx_and_torch_give_the_same_late_chunks(late, monkeypatch):
    from memories.parts.embedders import local

    transcript = long_transcript(30)  # several model windows
    onnx = late._read_late(transcript)
    monkeypatch.setattr(local, "_onnx_session", lambda: None)
    torch = late._read_late(transcript)
    assert onnx.snippets == torch.snippets and len(onnx.windows) >= 3
    assert np.abs(onnx.snippet_vectors - torch.snippet_vectors).max() < 1e-4
    assert np.abs(onnx.window_vectors - torch.window_vectors).max() < 1e-4
    assert np.abs(onnx.whole - torch.whole).max() < 1e-4


def test_the_pipeline_reads_each_transcript_token_about_once(late, remember, settings):
    """Counted at the runtime: the transcript once (windows of whole turns) plus the memory's
    fields; before late chunking, about 2.5 times the transcript."""
    rows = [json.loads(line) for line in (settings.BASE_DIR / "memories/demo/demo_memories.jsonl").open()]
    transcripts = [f"{row['transcript']}\nAlice: test {i}." for i, row in enumerate(rows[:4])] + [DENTIST]
    _category_matrix()  # the extractor's examples, read once per process
    late.clear_cache()
    before = REGISTRY.get_sample_value("omi_model_tokens_total") or 0
    for transcript in transcripts:
        remember("alice", transcript)
    read = REGISTRY.get_sample_value("omi_model_tokens_total") - before
    own = sum(late.count_tokens(t) for t in transcripts)
    assert own < read <= 1.15 * own  # the fields of each memory on top of its transcript
    snippets = MemoryVector.objects.filter(kind="snippet").count()
    assert snippets >= 4 * 20  # the demo conversations still get their snippets
