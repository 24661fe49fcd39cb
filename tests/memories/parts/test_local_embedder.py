import io

import numpy as np
import pytest

from memories.parts.embedders.local import LocalEmbedder, _model

TEXTS = ["what did the dentist say", "naïve café — 日本語", "word " * 400]  # the last is cut at 256 tokens


def _sentence_transformers(texts: list[str]) -> np.ndarray:
    return _model().encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def test_the_embedder_gives_the_vectors_sentence_transformers_gives():
    """ONNX Runtime embeds (one text at a time, no padding): the vectors must be the model's."""
    vectors = LocalEmbedder()._embed(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.abs(vectors - _sentence_transformers(TEXTS)).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.fixture
def start(settings, tmp_path):
    """Make the ONNX session as a new process would, under these settings, with MODEL_CACHE_DIR an
    empty folder of the test's own; the next test starts afresh."""
    from memories.parts.embedders import local

    settings.MODEL_CACHE_DIR = tmp_path
    local._onnx_session.cache_clear()

    def start(**overrides):
        for name, value in overrides.items():
            setattr(settings, name, value)
        local._onnx_session.cache_clear()
        return local._onnx_session()

    yield start
    local._onnx_session.cache_clear()


def test_torch_a_single_text_and_batches_of_mixed_lengths_give_the_same_vectors(start):
    """Without ONNX Runtime, torch embeds: a single text straight through the transformer, many in
    batches of similar length (snippets are not padded to the length of the long texts they come
    with); each text still gets its own vector, in the order given."""
    assert start(LOCAL_RUNTIME="torch") is None
    embedder = LocalEmbedder()
    single = np.vstack([embedder._embed([text]) for text in TEXTS])
    assert np.abs(single - _sentence_transformers(TEXTS)).max() < 1e-5
    texts = ["word " * 300] * 10 + [f"short text {i}" for i in range(40)] + ["medium " * 60]
    batches = embedder._batches(texts)
    assert sorted(i for batch in batches for i in batch) == list(range(len(texts)))
    assert batches[0] == list(range(8))  # 8 texts of 256 tokens fill the budget of 32 x 64 tokens
    assert max(len(batch) for batch in batches) == 32  # short texts go 32 to a batch
    together = embedder._embed(texts)
    one_by_one = np.vstack([embedder._embed([text]) for text in texts])
    assert np.abs(together - one_by_one).max() < 1e-5


def test_the_model_is_exported_once_to_onnx_and_gives_torchs_vectors(start, tmp_path):
    from memories.parts.embedders import local

    session = start()
    assert session is not None
    assert [p.suffix for p in tmp_path.iterdir()] == [".onnx"]  # exported once, nothing partial left
    for text in ["when is the school recital", "word " * 400]:
        assert np.abs(local._run_onnx(session, text) - local._embed_one_torch(text)).max() < 1e-5
    again = start()  # another process: reads the file, exports nothing
    assert again is not None and len(list(tmp_path.iterdir())) == 1


def test_an_export_that_does_not_match_torch_is_thrown_away_and_torch_embeds(start, tmp_path, monkeypatch, caplog):
    from memories.parts.embedders import local

    real = local._embed_one_torch
    monkeypatch.setattr(local, "_embed_one_torch", lambda text: real(text)[::-1].copy())  # torch "disagrees"
    assert start() is None
    assert list(tmp_path.iterdir()) == []
    assert "torch embeds texts" in caplog.text
    monkeypatch.setattr(local, "_embed_one_torch", real)
    assert np.array_equal(LocalEmbedder()._embed(["a query"])[0], real("a query"))


def test_torch_embeds_when_asked(start, tmp_path):
    assert start(LOCAL_RUNTIME="torch") is None
    assert list(tmp_path.iterdir()) == []


def test_prepare_model_exports_the_model_ahead_of_time_and_fails_loudly_when_it_cannot(start, settings, tmp_path):
    assert not list(tmp_path.iterdir())
    from django.core.management import CommandError, call_command

    from memories.parts.embedders import local

    out = io.StringIO()  # nothing exported yet in MODEL_CACHE_DIR: the command must do it
    call_command("prepare_model", stdout=out)
    assert f"all-MiniLM-L6-v2 (384 dims) ready: ONNX Runtime, {local.onnx_path()}" in out.getvalue()
    assert local.onnx_path().exists()

    blocked = tmp_path / "read-only"
    blocked.write_text("a file where the folder should be")
    settings.MODEL_CACHE_DIR = blocked
    local._onnx_session.cache_clear()
    with pytest.raises(CommandError, match="could not be exported"):
        call_command("prepare_model", stdout=io.StringIO())
