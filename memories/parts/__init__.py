"""The pipeline's pluggable parts: a base class and a registry each, chosen by a setting.

- `extractors/` (EXTRACTOR): transcript -> title, overview, emoji, category, action items, events;
- `embedders/` (EMBEDDER): texts -> unit vectors (with a per-process and a Redis cache);
- `vectorstores/` (VECTOR_STORE): vectors with metadata, queried per user;
- `chunking.py`: transcript windows of whole turns (as texts, or as token ranges for late
  chunking); `registry.py`: how a setting picks a part; `openai_client.py`: the OpenAI client
  the openai extractor and embedder share.
"""
