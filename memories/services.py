"""Writes: create, process, reprocess and delete memories; create API keys."""

import logging
import re
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from omi_memory.errors import BackendError, Conflict, ValidationFailed
from search.duplicates import duplicate_check_enqueue
from search.extractors import Extraction, get_extractor
from search.services import (
    memory_vectors_build_many,
    memory_vectors_delete,
    memory_vectors_save,
    memory_vectors_upsert_many,
    user_vectors_erase,
)
from search.vectorstores import get_vector_store

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
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)


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
            _enqueue_on_commit(ids[start:start + batch])
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
    deleted = Memory.objects.filter(uid=uid).exclude(status=Status.DELETED).update(
        status=Status.DELETED, claimed_at=None, claim_token=None
    )
    return deleted, user_vectors_erase(uid=uid)


def memory_process(*, memory_id: int, final_attempt: bool = True, reclaim: bool = False) -> str:
    """The pipeline for one memory (see `memory_process_many`); returns what happened to it."""
    return memory_process_many(memory_ids=[memory_id], final_attempt=final_attempt, reclaim=reclaim)[memory_id]


def memory_process_many(*, memory_ids: list[int], final_attempt: bool = True, reclaim: bool = False) -> dict[int, str]:
    """The pipeline: claim, extract (concurrently, for a remote extractor), embed every text in
    one embedder call, upsert in the store's batches, mark `indexed`.

    Returns what happened to each memory: `indexed`, `failed`, `retrying`, `skipped` (not
    claimable: done already, or another worker has it) or `superseded` (deleted or re-claimed
    while it ran). Only a memory whose vectors were all acknowledged is marked `indexed`. A
    transient failure before the last attempt puts the memory back to `queued`, and a
    `RetryLater` naming those memories is raised at the end for the task to retry them.
    """
    token, claimed = _claim(memory_ids, reclaim=reclaim)
    outcomes = {memory_id: "skipped" for memory_id in memory_ids}
    memories = list(Memory.objects.filter(id__in=claimed).order_by("id"))
    if not memories:
        return outcomes
    failures: dict[int, Exception] = {}
    extractions = _extract_all(memories, failures)
    ready = [m for m in memories if m.id in extractions]
    built = {}
    if ready:
        try:
            built = memory_vectors_build_many(memories=ready)
            failures.update(memory_vectors_upsert_many(memories=ready, built=built))
        except Exception as exc:  # noqa: BLE001 - recorded on every memory of the step
            failures.update({m.id: exc for m in ready if m.id not in failures})
    outcomes.update(_finish_indexed([m for m in ready if m.id not in failures], extractions, built, token))
    # Duplicates: the new vectors against their users' others, in a task that never fails this one.
    duplicate_check_enqueue(memory_ids=[memory_id for memory_id, done in outcomes.items() if done == "indexed"])

    retry = []
    for memory_id, exc in failures.items():
        reason = f"{type(exc).__name__}: {exc}"
        known = isinstance(exc, (BackendError, OperationalError, InterfaceError))
        if not known:
            logger.error("memory %s: pipeline failed", memory_id, exc_info=exc)
        if known and not getattr(exc, "permanent", False) and not final_attempt:
            _release(memory_id, token, reason)
            outcomes[memory_id] = "retrying"
            retry.append(memory_id)
        else:
            _finish_failed(memory_id, token, reason, built[memory_id].ids if memory_id in built else [])
            outcomes[memory_id] = "failed"
    if retry:
        raise RetryLater(f"{len(retry)} memories to retry; first: {failures[retry[0]]}", outcomes=outcomes)
    return outcomes


class RetryLater(BackendError):
    """Some memories failed transiently and were queued again: retry them (`memory_ids`);
    `outcomes` says what happened to each memory of the call."""

    def __init__(self, message: str, *, outcomes: dict[int, str]):
        super().__init__(message)
        self.outcomes = outcomes
        self.memory_ids = [memory_id for memory_id, outcome in outcomes.items() if outcome == "retrying"]


def memory_process_now(*, memory_ids: list[int]) -> dict[int, str]:
    """`memory_process_many` in this process, with the tasks' retry policy (for commands)."""
    from memories.tasks import backoff

    outcomes: dict[int, str] = {}
    for attempt in range(settings.PIPELINE_MAX_RETRIES + 1):
        try:
            outcomes.update(
                memory_process_many(memory_ids=memory_ids, final_attempt=attempt == settings.PIPELINE_MAX_RETRIES)
            )
            break
        except RetryLater as exc:
            outcomes.update(exc.outcomes)
            memory_ids = exc.memory_ids
            time.sleep(backoff(attempt))
    return outcomes


def _extract_all(memories: list[Memory], failures: dict[int, Exception]) -> dict[int, Extraction]:
    """Extract every memory, several at once where the extractor allows it; a failure is recorded
    in `failures` and does not stop the others."""
    extractor = get_extractor()

    def extract(memory: Memory) -> Extraction:
        return extractor.extract(
            transcript=memory.transcript, started_at=memory.started_at or memory.created_at, language=memory.language
        )

    workers = min(extractor.concurrency or settings.EXTRACT_CONCURRENCY, len(memories))
    extractions: dict[int, Extraction] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {memory.id: pool.submit(extract, memory) for memory in memories}
    for memory in memories:
        try:
            extraction = futures[memory.id].result()
        except Exception as exc:  # noqa: BLE001 - recorded on the memory
            failures[memory.id] = exc
            continue
        memory.title, memory.overview, memory.emoji = extraction.title, extraction.overview, extraction.emoji
        memory.category = extraction.category
        memory.extractor = extraction.extractor or extractor.name
        memory.extraction_fallback = extraction.fallback_reason
        extractions[memory.id] = extraction
    return extractions


def _finish_indexed(memories: list[Memory], extractions: dict[int, Extraction], built: dict, token) -> dict[int, str]:
    """Mark memories indexed (each by a conditional update on our claim) and store their
    structured data and vectors, in one transaction. A memory deleted or re-claimed meanwhile
    is `superseded`; a deleted one loses the vectors just written."""
    outcomes: dict[int, str] = {}
    with transaction.atomic():
        for memory in memories:
            vectors = built[memory.id]
            updated = Memory.objects.filter(id=memory.id, status=Status.PROCESSING, claim_token=token).update(
                title=memory.title,
                overview=memory.overview,
                emoji=memory.emoji,
                category=memory.category,
                extractor=memory.extractor,
                extraction_fallback=memory.extraction_fallback,
                status=Status.INDEXED,
                failure_reason="",
                indexed_at=timezone.now(),
                claim_token=None,
                text_hash=vectors.text_hash,
                embedding_model=vectors.model,
                embedding_dim=vectors.dim,
            )
            outcomes[memory.id] = "indexed" if updated else "superseded"
        indexed = [memory_id for memory_id, outcome in outcomes.items() if outcome == "indexed"]
        _replace_items({memory_id: extractions[memory_id] for memory_id in indexed})
        memory_vectors_save(built={memory_id: built[memory_id] for memory_id in indexed})
    for memory in memories:
        if outcomes[memory.id] == "superseded":
            if not Memory.objects.filter(id=memory.id).exclude(status=Status.DELETED).exists():
                memory_vectors_delete(memory=memory, extra_ids=built[memory.id].ids)
            logger.info("memory %s: deleted or re-claimed while processing", memory.id)
        else:
            logger.info("memory %s: indexed (%d vectors%s)", memory.id, len(built[memory.id].ids),
                        ", reused" if built[memory.id].reused else "")
    return outcomes


def _claim(memory_ids: list[int], *, reclaim: bool) -> tuple[uuid.UUID, list[int]]:
    """Take memories for processing with one conditional UPDATE; the token marks ours."""
    now = timezone.now()
    token = uuid.uuid4()
    stale = now - timedelta(seconds=settings.PIPELINE_STALE_CLAIM_SECONDS)
    claimable = Q(status=Status.QUEUED) | Q(status=Status.PROCESSING, claimed_at__lt=stale)
    if reclaim:  # the broker redelivered the task: the worker that had it is gone
        claimable |= Q(status=Status.PROCESSING)
    Memory.objects.filter(Q(id__in=memory_ids) & claimable).update(
        status=Status.PROCESSING, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
    )
    return token, list(Memory.objects.filter(id__in=memory_ids, claim_token=token).values_list("id", flat=True))


def _release(memory_id: int, token, reason: str) -> None:
    Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claim_token=token).update(
        status=Status.QUEUED, claim_token=None, failure_reason=f"retrying after: {reason}"[:2000]
    )


def _finish_failed(memory_id: int, token, reason: str, vector_ids: list[str]) -> None:
    logger.warning("memory %s: failed: %s", memory_id, reason)
    Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claim_token=token).update(
        status=Status.FAILED, claim_token=None, failure_reason=reason[:2000]
    )
    if vector_ids:  # some may have been written before the failure: never leave them behind
        try:
            get_vector_store().delete(vector_ids)
        except BackendError as exc:
            logger.warning("memory %s: could not remove its partial vectors: %s", memory_id, exc)


def _replace_items(extractions: dict[int, Extraction]) -> None:
    """New action items and events for memories; an action item the user completed stays completed,
    and those a duplicate merge brought from another memory stay as they are."""
    ids = list(extractions)
    extracted = ActionItem.objects.filter(memory_id__in=ids, merged_from=None)
    done = set(extracted.filter(completed=True).values_list("memory_id", "description"))
    extracted.delete()
    Event.objects.filter(memory_id__in=ids, merged_from=None).delete()
    ActionItem.objects.bulk_create(
        ActionItem(memory_id=memory_id, description=a.description, due_at=a.due_at,
                   completed=a.completed or (memory_id, a.description) in done)
        for memory_id, extraction in extractions.items()
        for a in extraction.action_items
    )
    Event.objects.bulk_create(
        Event(memory_id=memory_id, title=e.title, description=e.description, start=e.start,
              duration_minutes=e.duration_minutes)
        for memory_id, extraction in extractions.items()
        for e in extraction.events
    )


def api_key_create(*, name: str, uid: str = "") -> tuple[ApiKey, str]:
    """A new API key; the raw key is returned once and only its hash is stored."""
    if uid and not re.fullmatch(UID_PATTERN, uid):
        raise ValidationFailed(f"uid {uid!r} is not a valid user id")
    raw = "omk_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, prefix=raw[:12], key_hash=ApiKey.hash(raw), uid=uid or "")
    return key, raw
