"""Memories for tests, stored the way a caller stores them."""

from datetime import UTC, datetime

from memories.models import Memory
from memories.services import memory_create
from tests.support.transactions import committed
from tests.support.transcripts import BUDGET, DENTIST, GARDEN, RECITAL, STANDUP


def indexed_memory(uid: str, transcript: str, **fields) -> Memory:
    """Store a memory through the services; in-process, it is indexed on return."""
    with committed():
        memory = memory_create(uid=uid, transcript=transcript, **fields)
    memory.refresh_from_db()
    return memory


def february(day: int) -> datetime:
    """Noon (UTC) on a day of February 2026."""
    return datetime(2026, 2, day, 12, tzinfo=UTC)


def alices_five_and_bobs_one() -> dict[str, Memory]:
    """Alice's five memories, one a day from February 1st to 5th, from three sources and of several
    categories (`dentist` omi, `budget` phone, `standup` desktop, `recital` omi, `garden` phone),
    and Bob's own dentist visit (`bob`, on the 3rd)."""
    made = {
        name: indexed_memory("alice", transcript, source=source, created_at=february(day))
        for day, (name, transcript, source) in enumerate(
            [
                ("dentist", DENTIST, "omi"),
                ("budget", BUDGET, "phone"),
                ("standup", STANDUP, "desktop"),
                ("recital", RECITAL, "omi"),
                ("garden", GARDEN, "phone"),
            ],
            start=1,
        )
    }
    made["bob"] = indexed_memory("bob", DENTIST.replace("Alice", "Bob"), created_at=february(3))
    return made
