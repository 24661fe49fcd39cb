import numpy as np

from search.embedders.local import LocalEmbedder, _model


def test_a_single_text_gets_the_same_vector_as_in_a_batch():
    """Queries take a shorter path through the model; it must give the vectors documents get."""
    texts = ["what did the dentist say", "naïve café — 日本語", "word " * 400]  # the last is cut at 256 tokens
    batch = _model().encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    single = np.vstack([LocalEmbedder()._embed([text]) for text in texts])
    assert single.shape == (3, 384) and single.dtype == np.float32
    assert np.abs(single - batch).max() < 1e-5
    assert np.allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)


def test_texts_of_mixed_lengths_are_batched_by_length_and_keep_their_order():
    """Snippets are not padded to the length of the long texts they come with; each text still
    gets its own vector, in the order given."""
    embedder = LocalEmbedder()
    texts = ["word " * 300] * 10 + [f"short text {i}" for i in range(40)] + ["medium " * 60]
    batches = embedder._batches(texts)
    assert sorted(i for batch in batches for i in batch) == list(range(len(texts)))
    assert batches[0] == list(range(8))  # 8 texts of 256 tokens fill the budget of 32 x 64 tokens
    assert max(len(batch) for batch in batches) == 32  # short texts go 32 to a batch
    together = embedder._embed(texts)
    one_by_one = np.vstack([embedder._embed([text]) for text in texts])
    assert np.abs(together - one_by_one).max() < 1e-5
