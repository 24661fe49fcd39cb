"""The `openai` embedder: OpenAI's embeddings endpoint (or any compatible server).

Many texts go in one request, within the API's limits on inputs and tokens per request. Tokens
are estimated without a tokenizer (nothing is downloaded at run time): the estimate errs high for
ordinary text, and an input over the model's limit is cut before it is sent.
"""

import re

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from memories.parts.openai_client import backend_error, get_openai_client

from .base import Embedder

DEFAULT_DIMENSIONS = {"text-embedding-3-large": 3072, "text-embedding-3-small": 1536, "text-embedding-ada-002": 1536}
MAX_INPUT_TOKENS = 8191
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 250_000  # the API allows 300,000; the estimate is not exact
# What counts as a token at most: 1-3 ASCII letters, 1-3 digits, any other visible character
# (a non-ASCII one also counts its extra UTF-8 bytes), and a line break.
PIECE = re.compile(r"[A-Za-z]{1,3}|[0-9]{1,3}|[^\sA-Za-z0-9]|\n")


def estimate_tokens(text: str) -> int:
    """At least the number of tokens for ordinary text (real vocabularies hold most words whole,
    and three letters a token is what rare words cost): computed in C, no tokenizer needed."""
    return len(PIECE.findall(text)) + len(text.encode()) - len(text)


def cut_to_tokens(text: str, limit: int) -> str:
    """The longest start of `text` (cut at a space where there is one) whose estimate is at most `limit`."""
    if estimate_tokens(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:  # binary search on the length
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    cut = text[:low]
    space = cut.rfind(" ")
    return cut[:space] if space > len(cut) // 2 else cut


class OpenAIEmbedder(Embedder):
    name = "openai"

    def __init__(self, dimensions: int | None = None):
        self.model = settings.OPENAI_EMBEDDING_MODEL
        self.dimensions = dimensions or settings.OPENAI_EMBEDDING_DIMENSIONS
        self.dim = self.dimensions or DEFAULT_DIMENSIONS.get(self.model, 0)
        if not self.dim:
            raise ImproperlyConfigured(f"set OPENAI_EMBEDDING_DIMENSIONS for the model {self.model!r}")
        self.max_tokens = MAX_INPUT_TOKENS

    def warm_up(self) -> None:
        """Import the SDK and make its client (seconds on a busy machine): not in the first search."""
        get_openai_client()

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _embed(self, texts: list[str]) -> np.ndarray:
        inputs = [cut_to_tokens(text, MAX_INPUT_TOKENS) or " " for text in texts]
        vectors = []
        for batch in self._requests(inputs):
            vectors.extend(self._request(batch))
        return np.stack(vectors) if vectors else np.zeros((0, self.dim), dtype=np.float32)

    def _requests(self, inputs: list[str]):
        """The inputs in consecutive groups within the per-request limits."""
        batch, tokens = [], 0
        for text in inputs:
            cost = estimate_tokens(text)
            if batch and (len(batch) == MAX_INPUTS_PER_REQUEST or tokens + cost > MAX_TOKENS_PER_REQUEST):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += cost
        if batch:
            yield batch

    def _request(self, batch: list[str]) -> list[np.ndarray]:
        import openai

        extra = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            response = get_openai_client().embeddings.create(model=self.model, input=batch, **extra)
            data = sorted(response.data, key=lambda item: item.index)
        except (openai.OpenAIError, ValueError, AttributeError, TypeError) as exc:
            raise backend_error(exc, "openai embeddings") from exc
        if len(data) != len(batch):
            raise backend_error(
                ValueError(f"{len(data)} embeddings returned for {len(batch)} inputs"), "openai embeddings"
            )
        return [np.asarray(item.embedding, dtype=np.float32) for item in data]
