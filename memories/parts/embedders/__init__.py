from memories.parts.registry import load

from .base import Embedder

EMBEDDERS = {
    "local": "memories.parts.embedders.local.LocalEmbedder",
    "openai": "memories.parts.embedders.openai.OpenAIEmbedder",
}


def get_embedder() -> Embedder:
    return load("EMBEDDER", EMBEDDERS)
