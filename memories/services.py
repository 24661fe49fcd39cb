"""The memory's lifecycle: create, reprocess, retry, delete, merge, erase a user; API keys.

Processing itself (claim, extract, embed, upsert, finish) is in `memories/processing.py`; the
vectors of a memory in `memories/vectors.py`.
"""

import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from omi_memory import bounds
from omi_memory.errors import Conflict, ValidationFailed

from .models import EXTERNAL_ID_MAX, LANGUAGE_LENGTH, UID_PATTERN, ActionItem, ApiKey, Event, Memory, Source
from .vectors import memory_vectors_delete, user_vectors_erase

logger = logging.getLogger(__name__)
Status = Memory.Status


def memory_create(
    *,
    uid: str,
    transcript: str,
    source: str = Source.OMI,
    language: str = "en",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    created_at: datetime | None = None,
    external_id: str = "",
) -> Memory:
    """Store one memory as `queued`; it is processed once the transaction commits."""
    return memory_create_many(
        items=[
            dict(
                uid=uid,
                transcript=transcript,
                source=source,
                language=language,
                started_at=started_at,
                finished_at=finished_at,
                created_at=created_at,
                external_id=external_id,
            )
        ]
    )[0]


def memory_create_many(*, items: list[dict], enqueue: bool = True) -> list[Memory]:
    """Store several memories, all or none; each is processed once the transaction commits
    (`enqueue=False`: the caller runs `memory_process` itself, e.g. with a progress bar)."""
    memories = [memory_build(**item) for item in items]
    keys = [(m.uid, m.external_id) for m in memories if m.external_id]
    if len(set(keys)) != len(keys):
        raise Conflict("the same external_id appears twice for one uid in this request")
    with transaction.atomic():
        taken = _taken_external_ids(keys)
        if taken:
            raise Conflict(
                "a memory with this external_id already exists for this uid",
                details=[{"uid": uid, "external_id": ext, "id": id_} for uid, ext, id_ in taken],
                code="duplicate_external_id",
            )
        for memory in memories:
            memory.save()
        if enqueue:
            _enqueue_on_commit([m.id for m in memories])
    return memories


def parse_time(value) -> datetime | None:
    """A time from an import line (ISO 8601, `Z` allowed); a naive one is taken as UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _checked(**fields) -> dict:
    """The fields, if they keep the bounds every memory keeps whichever way it came in
    (omi_memory.bounds); times in UTC."""
    for name, value in fields.items():
        if isinstance(value, str) and (problem := bounds.text_problem(value)):
            raise ValidationFailed(f"{name} {problem}", details={"field": name})
        if isinstance(value, datetime):
            try:
                fields[name] = bounds.clean_moment(value)
            except ValueError as exc:
                raise ValidationFailed(f"{name} {exc}", details={"field": name}) from None
    return fields


def memory_build(
    *,
    uid: str,
    transcript: str,
    source: str = Source.OMI,
    language: str = "en",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    created_at: datetime | None = None,
    external_id: str | None = "",
) -> Memory:
    """A validated, unsaved memory (ValidationFailed says what is wrong)."""
    if not re.fullmatch(UID_PATTERN, uid or ""):
        raise ValidationFailed(f"uid {uid!r} is not a valid user id", details={"field": "uid"})
    if not transcript or bounds.is_blank(transcript):
        raise ValidationFailed("transcript is empty", details={"field": "transcript"})
    if len(transcript) > settings.MAX_TRANSCRIPT_CHARS:
        raise ValidationFailed(
            f"transcript is longer than {settings.MAX_TRANSCRIPT_CHARS} characters",
            details={"field": "transcript", "length": len(transcript)},
        )
    if source not in Source.values:
        raise ValidationFailed(f"unknown source {source!r}", details={"field": "source", "allowed": Source.values})
    language = language or "en"
    if not LANGUAGE_LENGTH[0] <= len(language) <= LANGUAGE_LENGTH[1]:
        raise ValidationFailed(
            f"language must have {LANGUAGE_LENGTH[0]} to {LANGUAGE_LENGTH[1]} characters", details={"field": "language"}
        )
    if len(external_id or "") > EXTERNAL_ID_MAX:
        raise ValidationFailed(
            f"external_id is longer than {EXTERNAL_ID_MAX} characters", details={"field": "external_id"}
        )
    _checked(transcript=transcript, language=language, external_id=external_id)
    times = _checked(started_at=started_at, finished_at=finished_at, created_at=created_at)
    started_at, finished_at, created_at = times["started_at"], times["finished_at"], times["created_at"]
    if started_at and finished_at and finished_at < started_at:
        raise ValidationFailed("finished_at is before started_at", details={"field": "finished_at"})
    return Memory(
        uid=uid,
        transcript=transcript,
        source=source,
        language=language,
        started_at=started_at,
        finished_at=finished_at,
        created_at=created_at or started_at or timezone.now(),
        external_id=external_id or "",
    )


def _taken_external_ids(keys: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    if not keys:
        return []
    query = Q()
    for uid, external_id in keys:
        query |= Q(uid=uid, external_id=external_id)
    return list(Memory.objects.filter(query).values_list("uid", "external_id", "id"))


def _enqueue_on_commit(memory_ids: list[int]) -> None:
    """After commit: one task for one memory, one batch task for several (batched embedding)."""
    from memories.tasks import process_memories, process_memory

    def enqueue(ids: list[int]) -> None:
        if len(ids) == 1:
            process_memory.delay(ids[0])
        else:
            process_memories.delay(ids)

    transaction.on_commit(partial(enqueue, list(memory_ids)))


def memory_reprocess(*, memory: Memory) -> Memory:
    """Queue a memory to run through the pipeline again (unchanged text is not re-embedded)."""
    stale = timezone.now() - timedelta(seconds=settings.PIPELINE_STALE_CLAIM_SECONDS)
    with transaction.atomic():
        updated = (
            Memory.objects.filter(id=memory.id)
            .filter(Q(status__in=[Status.INDEXED, Status.FAILED, Status.QUEUED]) | Q(claimed_at__lt=stale))
            .exclude(status=Status.DELETED)
            .update(status=Status.QUEUED, failure_reason="", attempts=0, claimed_at=None, claim_token=None)
        )
        if not updated:
            memory.refresh_from_db()
            raise Conflict(f"memory {memory.id} is {memory.status} and cannot be reprocessed now")
        _enqueue_on_commit([memory.id])
    memory.refresh_from_db()
    return memory


def memory_retry_failed(*, memory_ids: list[int] | None = None, batch: int = 16) -> int:
    """Queue failed memories (these, or every failed one) to run through the pipeline again, a
    few per task; returns how many were queued."""
    with transaction.atomic():
        failed = Memory.objects.select_for_update().filter(status=Status.FAILED)
        if memory_ids is not None:
            failed = failed.filter(id__in=memory_ids)
        ids = list(failed.values_list("id", flat=True))
        Memory.objects.filter(id__in=ids).update(
            status=Status.QUEUED, failure_reason="", attempts=0, claimed_at=None, claim_token=None
        )
        for start in range(0, len(ids), batch):
            _enqueue_on_commit(ids[start : start + batch])
    return len(ids)


def memory_delete(*, memory: Memory) -> None:
    """Soft-delete a memory and remove its vectors (in a task that retries if the store is down)."""
    from memories.tasks import delete_memory_vectors

    with transaction.atomic():
        Memory.objects.filter(id=memory.id).update(status=Status.DELETED, claimed_at=None, claim_token=None)
        transaction.on_commit(partial(delete_memory_vectors.delay, memory.id))


def memory_remove_vectors(*, memory_id: int) -> None:
    memory = Memory.objects.filter(id=memory_id, status=Status.DELETED).first()
    if memory is not None:
        memory_vectors_delete(memory=memory)


def user_erase(*, uid: str) -> tuple[int, int]:
    """Soft-delete every memory of a user and remove all of their vectors (the store's and the
    database's). Returns (memories deleted, vectors removed)."""
    deleted = (
        Memory.objects.filter(uid=uid)
        .exclude(status=Status.DELETED)
        .update(status=Status.DELETED, claimed_at=None, claim_token=None)
    )
    return deleted, user_vectors_erase(uid=uid)


def memory_merge_into(*, memory: Memory, into: Memory) -> None:
    """Merge one memory of a user into another of the same user: its action items and events move
    to `into` (except those `into` has already: the same description; the same title and start),
    each remembering where it came from, and `memory` is deleted (its vectors removed). Call it
    in a transaction that holds both rows (`select_for_update`)."""
    if memory.uid != into.uid or memory.id == into.id:
        raise ValidationFailed(f"memory {memory.id} cannot be merged into memory {into.id}")
    gone = [m.id for m in (memory, into) if m.status == Status.DELETED]
    if gone:
        raise Conflict(f"memory {gone[0]} is deleted already")
    moved = {"memory_id": into.id, "merged_from_id": Coalesce("merged_from_id", Value(memory.id))}  # first origin
    have = ActionItem.objects.filter(memory_id=into.id).values_list("description", flat=True)
    ActionItem.objects.filter(memory_id=memory.id).exclude(description__in=list(have)).update(**moved)
    have = set(Event.objects.filter(memory_id=into.id).values_list("title", "start"))
    events = Event.objects.filter(memory_id=memory.id).values_list("id", "title", "start")
    Event.objects.filter(id__in=[id_ for id_, title, start in events if (title, start) not in have]).update(**moved)
    memory_delete(memory=memory)


def api_key_create(*, name: str, uid: str = "") -> tuple[ApiKey, str]:
    """A new API key; the raw key is returned once and only its hash is stored."""
    if uid and not re.fullmatch(UID_PATTERN, uid):
        raise ValidationFailed(f"uid {uid!r} is not a valid user id")
    raw = "omk_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, prefix=raw[:12], key_hash=ApiKey.hash(raw), uid=uid or "")
    return key, raw
