from search.registry import load

from .base import Extraction, Extractor

EXTRACTORS = {
    "local": "search.extractors.local.LocalExtractor",
    "openai": "search.extractors.openai.OpenAIExtractor",
}


def get_extractor() -> Extractor:
    return load("EXTRACTOR", EXTRACTORS)


__all__ = ["Extraction", "Extractor", "get_extractor"]
