"""Pipeline parts for tests: the real local ones, with faults and counters added.

They are selected the way production parts are, by dotted path in the EXTRACTOR / EMBEDDER
settings. Counters are class attributes: the parts are built once per process by the registry.
"""

from memories.parts.embedders.local import LocalEmbedder
from memories.parts.extractors.local import LocalExtractor
from omi_memory.errors import BackendError


class FlakyExtractor(LocalExtractor):
    """The local extractor, failing `failures` times (transiently) before it works."""

    name = "flaky"
    failures = 0
    calls = 0
    permanent = False

    def extract(self, **kwargs):
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise BackendError(f"extractor unavailable (call {type(self).calls})", permanent=type(self).permanent)
        return super().extract(**kwargs)

    @classmethod
    def reset(cls, failures: int = 0, permanent: bool = False) -> None:
        cls.failures, cls.calls, cls.permanent = failures, 0, permanent


class CountingEmbedder(LocalEmbedder):
    """The local model, counting the texts it really embeds (cache misses)."""

    name = "counting"
    embedded = 0

    def _embed(self, texts):
        type(self).embedded += len(texts)
        return super()._embed(texts)


class TranscriptFlakyExtractor(LocalExtractor):
    """For a real worker (its own process, so no shared counters): a transcript that says how
    often to fail does ("[fails 2 times]": the first two extractions of that transcript fail
    transiently; "[always fails]": every one does)."""

    name = "transcript-flaky"
    seen: dict[str, int] = {}

    def extract(self, *, transcript: str, **kwargs):
        calls = self.seen[transcript] = self.seen.get(transcript, 0) + 1
        failures = 10**6 if "[always fails]" in transcript else _failures(transcript)
        if calls <= failures:
            raise BackendError(f"extractor unavailable (call {calls})")
        return super().extract(transcript=transcript, **kwargs)


def _failures(transcript: str) -> int:
    import re

    match = re.search(r"\[fails (\d+) times\]", transcript)
    return int(match.group(1)) if match else 0


class SlowExtractor(LocalExtractor):
    """The local extractor, taking SLOW_EXTRACT_SECONDS (from the environment: for a real worker)
    longer per memory, so that a batch is still at work when a test strikes."""

    name = "slow"

    def extract(self, **kwargs):
        import os
        import time

        time.sleep(float(os.environ.get("SLOW_EXTRACT_SECONDS", "0.5")))
        return super().extract(**kwargs)
