"""What each event says, built from the signals of `memories` and `search` (connected in apps.py).

Each receiver reads the rows the signal names and records one event per memory (or pair) for the
endpoints that subscribe to it (`services.webhook_events_record`, which never raises).
"""

from memories.models import Memory
from search.models import DuplicatePair

from .models import EventType
from .selectors import webhook_subscribed
from .services import webhook_events_record


def _when(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def memory_data(memory: Memory) -> dict:
    return {
        "memory": {
            "id": memory.id,
            "uid": memory.uid,
            "external_id": memory.external_id,
            "status": memory.status,
            "title": memory.title,
            "overview": memory.overview,
            "emoji": memory.emoji,
            "category": memory.category,
            "source": memory.source,
            "created_at": _when(memory.created_at),
            "indexed_at": _when(memory.indexed_at),
            "failure_reason": memory.failure_reason,
            "merged_into": memory.merged_into_id,
        }
    }


def _memories(type: str, memory_ids: list[int]) -> None:
    if not webhook_subscribed(type=type):  # the pipeline's usual case: one small query, nothing read
        return
    memories = Memory.objects.filter(id__in=memory_ids).defer("transcript").order_by("id")
    webhook_events_record(type=type, items=[(m.uid, memory_data(m)) for m in memories])


def memories_indexed(*, memory_ids: list[int], **kwargs) -> None:
    _memories(EventType.MEMORY_INDEXED, memory_ids)


def memories_failed(*, memory_ids: list[int], **kwargs) -> None:
    _memories(EventType.MEMORY_FAILED, memory_ids)


def memories_deleted(*, memory_ids: list[int], **kwargs) -> None:
    _memories(EventType.MEMORY_DELETED, memory_ids)


def duplicates_found(*, pair_ids: list[int], **kwargs) -> None:
    if not webhook_subscribed(type=EventType.DUPLICATE_FOUND):
        return
    pairs = DuplicatePair.objects.filter(id__in=pair_ids).order_by("id")
    items = [
        (
            pair.uid,
            {
                "pair": {
                    "id": pair.id,
                    "uid": pair.uid,
                    "memory_ids": [pair.memory_a_id, pair.memory_b_id],
                    "similarity": round(pair.similarity, 4),
                    "status": pair.status,
                }
            },
        )
        for pair in pairs
    ]
    webhook_events_record(type=EventType.DUPLICATE_FOUND, items=items)
