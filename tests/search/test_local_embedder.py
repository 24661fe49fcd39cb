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
