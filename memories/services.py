"""Writes: create, process, reprocess and delete memories; create API keys."""

import logging
import re
import secrets
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from omi_memory.errors import BackendError, Conflict, ValidationFailed
from search.extractors import get_extractor
from search.services import memory_vectors_build, memory_vectors_delete, memory_vectors_save, memory_vectors_upsert

from .models import UID_PATTERN, ActionItem, ApiKey, Event, Memory, Source

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
    memories = [_new_memory(**item) for item in items]
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


def _new_memory(
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
    if not re.fullmatch(UID_PATTERN, uid or ""):
        raise ValidationFailed(f"uid {uid!r} is not a valid user id", details={"field": "uid"})
    if not transcript or not transcript.strip():
        raise ValidationFailed("transcript is empty", details={"field": "transcript"})
    if len(transcript) > settings.MAX_TRANSCRIPT_CHARS:
        raise ValidationFailed(
            f"transcript is longer than {settings.MAX_TRANSCRIPT_CHARS} characters",
            details={"field": "transcript", "length": len(transcript)},
        )
    if source not in Source.values:
        raise ValidationFailed(f"unknown source {source!r}", details={"field": "source", "allowed": Source.values})
    if started_at and finished_at and finished_at < started_at:
        raise ValidationFailed("finished_at is before started_at", details={"field": "finished_at"})
    return Memory(
        uid=uid,
        transcript=transcript,
        source=source,
        language=language or "en",
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
    from memories.tasks import process_memory

    def enqueue(ids: list[int]) -> None:
        for memory_id in ids:
            process_memory.delay(memory_id)

    transaction.on_commit(partial(enqueue, list(memory_ids)))


def memory_reprocess(*, memory: Memory) -> Memory:
    """Queue a memory to run through the pipeline again (unchanged text is not re-embedded)."""
    stale = timezone.now() - timedelta(seconds=settings.PIPELINE_STALE_CLAIM_SECONDS)
    with transaction.atomic():
        updated = (
            Memory.objects.filter(id=memory.id)
            .filter(Q(status__in=[Status.INDEXED, Status.FAILED, Status.QUEUED]) | Q(claimed_at__lt=stale))
            .exclude(status=Status.DELETED)
            .update(status=Status.QUEUED, failure_reason="", attempts=0, claimed_at=None)
        )
        if not updated:
            memory.refresh_from_db()
            raise Conflict(f"memory {memory.id} is {memory.status} and cannot be reprocessed now")
        _enqueue_on_commit([memory.id])
    memory.refresh_from_db()
    return memory


def memory_delete(*, memory: Memory) -> None:
    """Soft-delete a memory and remove its vectors (in a task that retries if the store is down)."""
    from memories.tasks import delete_memory_vectors

    with transaction.atomic():
        Memory.objects.filter(id=memory.id).update(status=Status.DELETED, claimed_at=None)
        transaction.on_commit(partial(delete_memory_vectors.delay, memory.id))


def memory_remove_vectors(*, memory_id: int) -> None:
    memory = Memory.objects.filter(id=memory_id, status=Status.DELETED).first()
    if memory is not None:
        memory_vectors_delete(memory=memory)


def memory_process(*, memory_id: int, final_attempt: bool = True, reclaim: bool = False) -> str:
    """The pipeline for one memory: claim, extract, embed, upsert, mark `indexed`.

    Returns what happened: `indexed`, `failed`, `skipped` (not claimable: already done, or taken
    by another worker) or `superseded` (deleted or re-claimed while it ran). A transient failure
    before the last attempt puts the memory back to `queued` and re-raises, for the task to retry.
    """
    claim = _claim(memory_id, reclaim=reclaim)
    if claim is None:
        logger.info("memory %s: not claimable, skipped", memory_id)
        return "skipped"
    memory = Memory.objects.get(id=memory_id)
    try:
        extraction = get_extractor().extract(
            transcript=memory.transcript,
            started_at=memory.started_at or memory.created_at,
            language=memory.language,
        )
        memory.title, memory.overview, memory.emoji = extraction.title, extraction.overview, extraction.emoji
        memory.category, memory.extractor = extraction.category, get_extractor().name
        built = memory_vectors_build(memory=memory)
        memory_vectors_upsert(memory=memory, built=built)
    except (BackendError, OperationalError, InterfaceError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if getattr(exc, "permanent", False) or final_attempt:
            _finish_failed(memory_id, claim, reason)
            return "failed"
        _release(memory_id, claim, reason)
        if isinstance(exc, BackendError):
            raise
        raise BackendError(reason) from exc
    except Exception as exc:  # a bug or a bad input: never leave the memory in `processing`
        logger.exception("memory %s: pipeline failed", memory_id)
        _finish_failed(memory_id, claim, f"{type(exc).__name__}: {exc}")
        return "failed"

    with transaction.atomic():
        updated = Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claimed_at=claim).update(
            title=memory.title,
            overview=memory.overview,
            emoji=memory.emoji,
            category=memory.category,
            extractor=memory.extractor,
            status=Status.INDEXED,
            failure_reason="",
            indexed_at=timezone.now(),
            text_hash=built.text_hash,
            embedding_model=built.model,
            embedding_dim=built.dim,
        )
        if updated:
            _replace_items(memory, extraction)
            memory_vectors_save(memory=memory, built=built)
    if not updated:
        if not Memory.objects.filter(id=memory_id).exclude(status=Status.DELETED).exists():
            memory_vectors_delete(memory=memory, extra_ids=built.ids)
        logger.info("memory %s: deleted or re-claimed while processing", memory_id)
        return "superseded"
    logger.info("memory %s: indexed (%d vectors%s)", memory_id, len(built.ids), ", reused" if built.reused else "")
    return "indexed"


def _claim(memory_id: int, *, reclaim: bool) -> datetime | None:
    """Take the memory for processing with one conditional UPDATE; the claim time is the token."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.PIPELINE_STALE_CLAIM_SECONDS)
    claimable = Q(status=Status.QUEUED) | Q(status=Status.PROCESSING, claimed_at__lt=stale)
    if reclaim:  # the broker redelivered the task: the worker that had it is gone
        claimable |= Q(status=Status.PROCESSING)
    updated = Memory.objects.filter(Q(id=memory_id) & claimable).update(
        status=Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
    )
    return now if updated == 1 else None


def _release(memory_id: int, claim: datetime, reason: str) -> None:
    Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claimed_at=claim).update(
        status=Status.QUEUED, failure_reason=f"retrying after: {reason}"[:2000]
    )


def _finish_failed(memory_id: int, claim: datetime, reason: str) -> None:
    logger.warning("memory %s: failed: %s", memory_id, reason)
    Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claimed_at=claim).update(
        status=Status.FAILED, failure_reason=reason[:2000]
    )


def _replace_items(memory: Memory, extraction) -> None:
    """New action items and events; an action item the user completed stays completed."""
    done = set(memory.action_items.filter(completed=True).values_list("description", flat=True))
    memory.action_items.all().delete()
    memory.events.all().delete()
    ActionItem.objects.bulk_create(
        ActionItem(memory=memory, description=a.description, due_at=a.due_at, completed=a.completed or a.description in done)
        for a in extraction.action_items
    )
    Event.objects.bulk_create(
        Event(memory=memory, title=e.title, description=e.description, start=e.start, duration_minutes=e.duration_minutes)
        for e in extraction.events
    )


def api_key_create(*, name: str, uid: str = "") -> tuple[ApiKey, str]:
    """A new API key; the raw key is returned once and only its hash is stored."""
    if uid and not re.fullmatch(UID_PATTERN, uid):
        raise ValidationFailed(f"uid {uid!r} is not a valid user id")
    raw = "omk_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, prefix=raw[:12], key_hash=ApiKey.hash(raw), uid=uid or "")
    return key, raw
