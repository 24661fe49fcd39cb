"""Reads: memories and API keys. `uid=None` means every user (a key that is not scoped)."""

from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from omi_memory.errors import NotFound

from .models import ApiKey, Memory


def memory_list(
    *,
    uid: str | None = None,
    status: str | None = None,
    category: str | None = None,
    source: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    text: str = "",
) -> QuerySet[Memory]:
    """Memories, newest first; deleted ones only when asked for by status. `text`: contained in
    the title, overview or transcript (any case)."""
    memories = Memory.objects.all()
    if text:
        memories = memories.filter(
            Q(title__icontains=text) | Q(overview__icontains=text) | Q(transcript__icontains=text)
        )
    if uid is not None:
        memories = memories.filter(uid=uid)
    memories = memories.filter(status=status) if status else memories.exclude(status=Memory.Status.DELETED)
    if category:
        memories = memories.filter(category=category)
    if source:
        memories = memories.filter(source=source)
    if starts_at:
        memories = memories.filter(created_at__gte=starts_at)
    if ends_at:
        memories = memories.filter(created_at__lte=ends_at)
    return memories


def memory_get(*, memory_id: int, uid: str | None = None, include_deleted: bool = False) -> Memory:
    """One memory, or NotFound: also for another user's memory, so ids reveal nothing."""
    memories = Memory.objects.filter(id=memory_id)
    if uid is not None:
        memories = memories.filter(uid=uid)
    if not include_deleted:
        memories = memories.exclude(status=Memory.Status.DELETED)
    memory = memories.prefetch_related("action_items", "events").first()
    if memory is None:
        raise NotFound(f"memory {memory_id} not found")
    return memory


def memory_uids() -> list[str]:
    """Every user that has a memory that is not deleted, in order."""
    memories = Memory.objects.exclude(status=Memory.Status.DELETED)
    return list(memories.order_by("uid").values_list("uid", flat=True).distinct())


def pipeline_stats(*, now: datetime | None = None, failed_limit: int = 50) -> dict:
    """What the pipeline page shows: memories by status, what was indexed in the last hour (in
    12 buckets of 5 minutes, oldest first) and the most recent failures with their reasons."""
    now = now or timezone.now()
    counts = {status: 0 for status in Memory.Status.values}
    for row in Memory.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    hour_ago = now - timedelta(hours=1)
    buckets = [0] * 12
    for indexed_at in Memory.objects.filter(indexed_at__gt=hour_ago).values_list("indexed_at", flat=True):
        buckets[min(11, int((indexed_at - hour_ago).total_seconds() // 300))] += 1
    failed = Memory.objects.filter(status=Memory.Status.FAILED).order_by("-updated_at")
    return {
        "counts": counts,
        "busy": counts["queued"] + counts["processing"],
        "indexed_last_hour": sum(buckets),
        "per_minute": round(sum(buckets) / 60, 2),
        "buckets": buckets,
        "failed": list(failed[:failed_limit]),
        "failed_total": counts["failed"],
    }


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    if not raw_key:
        return None
    key = ApiKey.objects.filter(key_hash=ApiKey.hash(raw_key), is_active=True).first()
    if key is not None and (key.last_used_at is None or key.last_used_at < timezone.now() - timedelta(minutes=1)):
        ApiKey.objects.filter(id=key.id).update(last_used_at=timezone.now())
    return key
