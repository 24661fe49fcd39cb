from memories.parts.registry import load

from .base import Extraction, Extractor

EXTRACTORS = {
    "local": "memories.parts.extractors.local.LocalExtractor",
    "openai": "memories.parts.extractors.openai.OpenAIExtractor",
}


def get_extractor() -> Extractor:
    return load("EXTRACTOR", EXTRACTORS)


__all__ = ["Extraction", "Extractor", "get_extractor"]
