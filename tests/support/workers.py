"""What tests with real workers send, wait for and read back: memories to create, their statuses,
how often the workers' logs say each was indexed."""

import re
import time
from pathlib import Path

import pytest

from memories.models import Memory
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP

FAST_RECOVERY = {
    "PIPELINE_LEASE_SECONDS": "3",  # renewed every 0.75 s while a worker is on it
    "PIPELINE_QUEUE_LEASE_SECONDS": "5",
    "PIPELINE_SWEEP_SECONDS": "1",
    "PIPELINE_RETRY_BACKOFF_SECONDS": "1",
    "BROKER_RETRY_AFTER_SECONDS": "1",
    "EXTRACTOR": "tests.support.parts.SlowExtractor",  # batches long enough to strike mid-way
    "SLOW_EXTRACT_SECONDS": "0.3",
}
TRANSCRIPTS = [DENTIST, BUDGET, STANDUP, RECITAL, GARDEN]
BOUND_SECONDS = 120  # from a fault's end to every memory done


def transcripts(count: int, tag: str) -> list[dict]:
    """Memories to create: `count` distinct transcripts, for two users."""
    return [
        {"uid": ("alice", "ben")[i % 2], "transcript": f"{TRANSCRIPTS[i % 5]}\nAlice: That was note {i} of {tag}."}
        for i in range(count)
    ]


def created_ids(answer) -> list[int]:
    assert answer.status == 201, answer.json
    return [m["id"] for m in answer.json["items"]]


def statuses(ids: list[int]) -> dict[int, str]:
    return dict(Memory.objects.filter(id__in=ids).values_list("id", "status"))


def wait_for(condition, seconds: float, what: str, logs: list[Path] = ()) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
            pytest.fail(f"not within {seconds} s: {what}\n{tails}")
        time.sleep(0.1)


def all_indexed(ids: list[int]):
    return lambda: set(statuses(ids).values()) == {"indexed"}


def nothing_pending(ids: list[int]):
    """Done: indexed, or deleted with its vectors removed (no lease left)."""
    return lambda: (
        not Memory.objects.filter(id__in=ids)
        .exclude(status="indexed", lease_until=None)
        .exclude(status="deleted", lease_until=None)
        .exists()
    )


def indexings(logs: list[Path]) -> dict[int, int]:
    """How many times each memory was marked indexed, by the workers' logs."""
    counts: dict[int, int] = {}
    for log in logs:
        for memory_id in re.findall(r"memory (\d+): indexed \(", log.read_text()):
            counts[int(memory_id)] = counts.get(int(memory_id), 0) + 1
    return counts
