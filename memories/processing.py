"""The processing engine: claim, extract, embed, upsert, finish; the retry policy.

`memory_process_many` takes queued memories through the pipeline. A worker claims them with one
conditional UPDATE (a token marks its claim), extracts their structured data (several at once for
a remote extractor), embeds all their texts in one embedder call and upserts them in the store's
batches (`memories/vectors.py`), then marks them `indexed` by a conditional update on its claim,
and sends `memory_indexed`. A transient failure before the last attempt puts a memory back to
`queued` and raises `RetryLater` for the task to retry it (Celery's autoretry, see `tasks.py`); on
the last attempt, or for a permanent failure, the memory is `failed` with the reason.

Leases: the database, not the broker, says what is left to do. A claim holds its memories for
PIPELINE_LEASE_SECONDS, renewed by a heartbeat (a thread) every quarter of that while the worker
is on them, however long the batch; a memory put back for a retry is held for the retry's longest
countdown. Whatever happens to a message or a worker, once the lease has passed the sweeper
(`memories.services.pipeline_sweep`, run by Celery beat) sends the memory again. A late original
cannot finish what another claim took over: every finish is conditional on its own token.
"""

import functools
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from omi_memory.errors import BackendError
from omi_memory.heartbeat import Heartbeat
from omi_memory.metrics import PIPELINE_FAILURES, PIPELINE_RETRIES, PIPELINE_STAGE, timed

from .models import ActionItem, Event, Memory
from .parts.extractors import Extraction, get_extractor
from .parts.vectorstores import get_vector_store
from .parts.versions import using_version
from .signals import memory_failed, memory_indexed
from .vectors import memory_vectors_build_many, memory_vectors_delete, memory_vectors_save, memory_vectors_upsert_many

logger = logging.getLogger(__name__)
Status = Memory.Status


def memory_process(*, memory_id: int, final_attempt: bool = True, attempt: int = 0) -> str:
    """The pipeline for one memory (see `memory_process_many`); returns what happened to it."""
    return memory_process_many(memory_ids=[memory_id], final_attempt=final_attempt, attempt=attempt)[memory_id]


def memory_process_many(*, memory_ids: list[int], final_attempt: bool = True, attempt: int = 0) -> dict[int, str]:
    """The pipeline: claim, extract (concurrently, for a remote extractor), embed every text in
    one embedder call, upsert in the store's batches, mark `indexed`.

    Returns what happened to each memory: `indexed`, `failed`, `retrying`, `skipped` (not
    claimable: done already, or another worker has it) or `superseded` (deleted or re-claimed
    while it ran). Only a memory whose vectors were all acknowledged is marked `indexed`. A
    transient failure before the last attempt puts the memory back to `queued`, and a
    `RetryLater` naming those memories is raised at the end for the task to retry them (`attempt`:
    the retries so far, which bound the retry's countdown and so its lease). The claim's lease is
    renewed while the work goes on; if the database goes away meanwhile, what is still held is put
    back to `queued` once it answers again (else the lease runs out and the sweeper sends it again).
    """
    token, claimed = _claim(memory_ids)
    try:
        with _heartbeat(token), using_version(None):  # one index version for the whole batch
            return _process_claimed(memory_ids, claimed, token, final_attempt, attempt)
    except (OperationalError, InterfaceError) as exc:
        retry = _released_after_database_error(token, exc, attempt)
        if retry is None:
            raise
        raise retry from exc


def _process_claimed(
    memory_ids: list[int], claimed: list[int], token, final_attempt: bool, attempt: int
) -> dict[int, str]:
    """The pipeline for what the claim `token` took (`claimed`, of `memory_ids`)."""
    outcomes = {memory_id: "skipped" for memory_id in memory_ids}
    memories = list(Memory.objects.filter(id__in=claimed).order_by("id"))
    if not memories:
        return outcomes
    failures: dict[int, Exception] = {}
    with timed(PIPELINE_STAGE, "extract"):
        extractions = _extract_all(memories, failures)
    ready = [m for m in memories if m.id in extractions]
    built = {}
    if ready:
        try:
            with timed(PIPELINE_STAGE, "embed"):
                built = memory_vectors_build_many(memories=ready)
            with timed(PIPELINE_STAGE, "upsert"):
                failures.update(memory_vectors_upsert_many(memories=ready, built=built))
        except Exception as exc:  # noqa: BLE001 - recorded on every memory of the step
            failures.update({m.id: exc for m in ready if m.id not in failures})
    with timed(PIPELINE_STAGE, "finish"):
        outcomes.update(_finish_indexed([m for m in ready if m.id not in failures], extractions, built, token))
    indexed = [memory_id for memory_id, done in outcomes.items() if done == "indexed"]
    if indexed:  # e.g. the duplicate check (search); a receiver's failure must not fail the pipeline
        _announce(memory_indexed, indexed)

    retry, failed = [], []
    for memory_id, exc in failures.items():
        reason = f"{type(exc).__name__}: {exc}"
        known = isinstance(exc, (BackendError, OperationalError, InterfaceError))
        if not known:
            logger.error("memory %s: pipeline failed", memory_id, exc_info=exc)
        if known and not getattr(exc, "permanent", False) and not final_attempt:
            _release(memory_id, token, reason, attempt)
            outcomes[memory_id] = "retrying"
            retry.append(memory_id)
            PIPELINE_RETRIES.labels(type(exc).__name__).inc()
        else:
            if _finish_failed(memory_id, token, reason, built[memory_id].ids if memory_id in built else []):
                failed.append(memory_id)
            outcomes[memory_id] = "failed"
            PIPELINE_FAILURES.labels(type(exc).__name__).inc()
    if failed:
        _announce(memory_failed, failed)
    if retry:
        raise RetryLater(f"{len(retry)} memories to retry; first: {failures[retry[0]]}", outcomes=outcomes)
    return outcomes


def _announce(signal, memory_ids: list[int]) -> None:
    """Send `memory_indexed` or `memory_failed` (the duplicate check, webhooks): a receiver's
    failure is logged and never fails the pipeline."""
    signal_name = "memory_indexed" if signal is memory_indexed else "memory_failed"
    for receiver, result in signal.send_robust(sender=Memory, memory_ids=memory_ids):
        if isinstance(result, Exception):
            logger.error("%s receiver %s failed", signal_name, receiver, exc_info=result)


class RetryLater(BackendError):
    """Transient: try the task again later (Celery retries it, with backoff). From the pipeline,
    some memories failed transiently and were queued again (`memory_ids`); `outcomes` says what
    happened to each memory of the call."""

    def __init__(self, message: str, *, outcomes: dict[int, str] | None = None):
        super().__init__(message)
        self.outcomes = outcomes or {}
        self.memory_ids = [memory_id for memory_id, outcome in self.outcomes.items() if outcome == "retrying"]


def memory_process_now(*, memory_ids: list[int]) -> dict[int, str]:
    """`memory_process_many` in this process, with the tasks' retry policy (for commands)."""
    outcomes: dict[int, str] = {}
    for attempt in range(settings.PIPELINE_MAX_RETRIES + 1):
        try:
            outcomes.update(
                memory_process_many(
                    memory_ids=memory_ids, final_attempt=attempt == settings.PIPELINE_MAX_RETRIES, attempt=attempt
                )
            )
            break
        except RetryLater as exc:
            outcomes.update(exc.outcomes)
            memory_ids = exc.memory_ids
            time.sleep(retry_delay(attempt))
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
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {memory.id: pool.submit(extract, memory) for memory in memories}
        results = {memory_id: future.result for memory_id, future in futures.items()}
    else:  # one at a time: no threads to start
        results = {memory.id: functools.partial(extract, memory) for memory in memories}
    for memory in memories:
        try:
            extraction = results[memory.id]()
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
                lease_until=None,
                searchable=True,
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
            logger.info(
                "memory %s: indexed (%d vectors%s)",
                memory.id,
                len(built[memory.id].ids),
                ", reused" if built[memory.id].reused else "",
            )
    return outcomes


def _claim(memory_ids: list[int]) -> tuple[uuid.UUID, list[int]]:
    """Take memories for processing with one conditional UPDATE; the token marks ours. A memory
    is claimable when queued, or processing under a lease that has passed (its worker is gone)."""
    now = timezone.now()
    token = uuid.uuid4()
    claimable = Q(status=Status.QUEUED) | Q(status=Status.PROCESSING, lease_until__lt=now)
    Memory.objects.filter(Q(id__in=memory_ids) & claimable).update(
        status=Status.PROCESSING,
        claimed_at=now,
        lease_until=now + timedelta(seconds=settings.PIPELINE_LEASE_SECONDS),
        claim_token=token,
        attempts=F("attempts") + 1,
    )
    return token, list(Memory.objects.filter(id__in=memory_ids, claim_token=token).values_list("id", flat=True))


def _heartbeat(token) -> Heartbeat:
    """Renews the lease on what a claim holds, every quarter lease, until the block ends (or nothing
    of the claim is processing any more)."""
    lease = settings.PIPELINE_LEASE_SECONDS

    def beat() -> bool:
        held = Memory.objects.filter(claim_token=token, status=Status.PROCESSING)
        return bool(held.update(lease_until=timezone.now() + timedelta(seconds=lease)))

    return Heartbeat(f"lease-{token}", lease / 4, beat)


def lease_after_retry(attempt: int) -> timedelta:
    """How long a memory put back for retry number `attempt + 1` is held by its message: the
    longest countdown Celery may give it (backoff with full jitter), then a queued memory's lease."""
    ceiling = min(settings.PIPELINE_RETRY_BACKOFF_SECONDS * 2**attempt, settings.PIPELINE_RETRY_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=ceiling + settings.PIPELINE_QUEUE_LEASE_SECONDS)


def _release(memory_id: int, token, reason: str, attempt: int) -> None:
    Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claim_token=token).update(
        status=Status.QUEUED,
        claim_token=None,
        lease_until=timezone.now() + lease_after_retry(attempt),
        failure_reason=f"retrying after: {reason}"[:2000],
    )


def _released_after_database_error(token, exc: Exception, attempt: int) -> "RetryLater | None":
    """The database went away while a claim was at work: on a new connection, put back to
    `queued` what the claim still holds and return the `RetryLater` to raise; None when that fails
    too (or inside a transaction, which cannot reconnect)."""
    if transaction.get_connection().in_atomic_block:
        return None
    connection.close()
    reason = f"{type(exc).__name__}: {exc}"
    try:
        held = list(Memory.objects.filter(claim_token=token, status=Status.PROCESSING).values_list("id", flat=True))
        for memory_id in held:
            _release(memory_id, token, reason, attempt)
    except DatabaseError:
        logger.warning("claim %s: the database went away (%s); its lease will run out", token, reason)
        return None
    logger.warning("claim %s: the database went away (%s); %d memories queued again", token, reason, len(held))
    return RetryLater(f"database unavailable: {reason}", outcomes={memory_id: "retrying" for memory_id in held})


def _finish_failed(memory_id: int, token, reason: str, vector_ids: list[str]) -> bool:
    """Mark a memory failed (False: deleted or re-claimed meanwhile), its partial vectors removed."""
    logger.warning("memory %s: failed: %s", memory_id, reason)
    updated = Memory.objects.filter(id=memory_id, status=Status.PROCESSING, claim_token=token).update(
        status=Status.FAILED, claim_token=None, lease_until=None, searchable=False, failure_reason=reason[:2000]
    )
    if vector_ids:  # some may have been written before the failure: never leave them behind
        try:
            get_vector_store().delete(vector_ids)
        except BackendError as exc:
            logger.warning("memory %s: could not remove its partial vectors: %s", memory_id, exc)
    return bool(updated)


def _replace_items(extractions: dict[int, Extraction]) -> None:
    """New action items and events for memories; an action item the user completed stays completed,
    and those a duplicate merge brought from another memory stay as they are."""
    ids = list(extractions)
    extracted = ActionItem.objects.filter(memory_id__in=ids, merged_from=None)
    done = set(extracted.filter(completed=True).values_list("memory_id", "description"))
    extracted.delete()
    Event.objects.filter(memory_id__in=ids, merged_from=None).delete()
    ActionItem.objects.bulk_create(
        ActionItem(
            memory_id=memory_id,
            description=a.description,
            due_at=a.due_at,
            completed=a.completed or (memory_id, a.description) in done,
        )
        for memory_id, extraction in extractions.items()
        for a in extraction.action_items
    )
    Event.objects.bulk_create(
        Event(
            memory_id=memory_id,
            title=e.title,
            description=e.description,
            start=e.start,
            duration_minutes=e.duration_minutes,
        )
        for memory_id, extraction in extractions.items()
        for e in extraction.events
    )


def retry_delay(retries: int) -> int:
    """Seconds before retry number `retries + 1`: exponential backoff with full jitter, as
    Celery's `retry_backoff` / `retry_jitter` compute it for the tasks."""
    return get_exponential_backoff_interval(
        factor=settings.PIPELINE_RETRY_BACKOFF_SECONDS,
        retries=retries,
        maximum=settings.PIPELINE_RETRY_BACKOFF_MAX_SECONDS,
        full_jitter=True,
    )
