from search.registry import load

from .base import Embedder

EMBEDDERS = {
    "local": "search.embedders.local.LocalEmbedder",
    "openai": "search.embedders.openai.OpenAIEmbedder",
}


def get_embedder() -> Embedder:
    return load("EMBEDDER", EMBEDDERS)
