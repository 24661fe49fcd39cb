from memories.parts.registry import load

from .base import Embedder

EMBEDDERS = {
    "local": "memories.parts.embedders.local.LocalEmbedder",
    "openai": "memories.parts.embedders.openai.OpenAIEmbedder",
}


def get_embedder() -> Embedder:
    """The embedder of the index version in use (memories/parts/versions.py)."""
    from memories.parts.versions import current_parts

    return current_parts().embedder


def configured_embedder() -> Embedder:
    """The embedder the settings name (EMBEDDER): the index's until a version is activated."""
    return load("EMBEDDER", EMBEDDERS)
