"""The memory's lifecycle: create, reprocess, retry, delete, merge, erase a user; API keys; the
audit trail.

Each destructive or privileged action takes the `actor` who does it (`omi_memory.actors.Actor`,
built from the request or the command) and records it with `audit_record`, in the transaction
that does it: the action and its record commit together, or neither does.

Processing itself (claim, extract, embed, upsert, finish) is in `memories/processing.py`; the
vectors of a memory in `memories/vectors.py`.

Work is sent to the task queue after the transaction commits; when the broker cannot take it the
request still succeeds (the memory is stored, deleted or queued again: the database says so), the
failure is logged, and `pipeline_sweep` (run by Celery beat) sends it once the broker is back.
"""

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from omi_memory import bounds
from omi_memory.actors import USER, Actor
from omi_memory.breaker import send_task
from omi_memory.errors import BackendError, Conflict, ValidationFailed

from .models import (
    EXTERNAL_ID_MAX,
    LANGUAGE_LENGTH,
    UID_PATTERN,
    ActionItem,
    ApiKey,
    AuditEvent,
    Event,
    Memory,
    Source,
)
from .processing import lease_after_retry
from .signals import memory_deleted, memory_failed
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
    try:
        with transaction.atomic():
            _raise_if_taken(keys)
            for memory in memories:
                memory.lease_until = timezone.now() + _queue_lease()
                memory.save()
            if enqueue:
                _enqueue_on_commit([m.id for m in memories])
    except IntegrityError:
        _raise_if_taken(keys)  # another request stored the same external_id meanwhile
        raise
    return memories


def _raise_if_taken(keys: list[tuple[str, str]]) -> None:
    """Conflict naming the memories that have one of these (uid, external_id) already."""
    taken = _taken_external_ids(keys)
    if taken:
        raise Conflict(
            "a memory with this external_id already exists for this uid",
            details=[{"uid": uid, "external_id": ext, "id": id_} for uid, ext, id_ in taken],
            code="duplicate_external_id",
        )


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

    if len(memory_ids) == 1:
        transaction.on_commit(partial(_send, process_memory, [memory_ids[0]], memory_ids))
    else:
        transaction.on_commit(partial(_send, process_memories, [list(memory_ids)], memory_ids))


def _send(task, args: list, memory_ids: list[int]) -> bool:
    """Send a task for these memories. When the broker cannot take it (down, or failed a moment
    ago) the memories' lease is ended, so that the next sweep sends it again, and False is returned;
    the caller's answer stands: the database holds what is to be done."""
    if send_task(task, args, what_now="the work is stored and the sweeper sends it once the broker is back"):
        return True
    Memory.objects.filter(id__in=memory_ids).exclude(lease_until=None).update(lease_until=timezone.now())
    return False


def _requeued() -> dict:
    """The fields of a memory queued to run through the pipeline again, from the start."""
    return dict(
        status=Status.QUEUED,
        failure_reason="",
        attempts=0,
        claimed_at=None,
        claim_token=None,
        lease_until=timezone.now() + _queue_lease(),
    )


def _queue_lease() -> timedelta:
    """How long a message in the broker holds its memory before the sweeper sends it again."""
    return timedelta(seconds=settings.PIPELINE_QUEUE_LEASE_SECONDS)


def memory_reprocess(*, memory: Memory, actor: Actor) -> Memory:
    """Queue a memory to run through the pipeline again (unchanged text is not re-embedded). An
    indexed memory stays searchable, with its old vectors, until its new ones replace them."""
    status_before = memory.status
    now = timezone.now()
    with transaction.atomic():
        updated = (
            Memory.objects.filter(id=memory.id)
            .filter(
                Q(status__in=[Status.INDEXED, Status.FAILED, Status.QUEUED])
                | Q(status=Status.PROCESSING, lease_until__lt=now)  # its worker is gone
            )
            .update(**_requeued())
        )
        if not updated:
            memory.refresh_from_db()
            raise Conflict(f"memory {memory.id} is {memory.status} and cannot be reprocessed now")
        _enqueue_on_commit([memory.id])
        _audit_memory(actor, AuditEvent.Action.MEMORY_REPROCESS, memory, status_before=status_before)
    memory.refresh_from_db()
    return memory


def memory_retry_failed(*, memory_ids: list[int] | None = None, actor: Actor, batch: int = 16) -> int:
    """Queue failed memories (these, or every failed one) to run through the pipeline again, a
    few per task; returns how many were queued (and records it, when any were)."""
    with transaction.atomic():
        failed = Memory.objects.select_for_update().filter(status=Status.FAILED)
        if memory_ids is not None:
            failed = failed.filter(id__in=memory_ids)
        ids = list(failed.values_list("id", flat=True))
        Memory.objects.filter(id__in=ids).update(**_requeued())
        for start in range(0, len(ids), batch):
            _enqueue_on_commit(ids[start : start + batch])
        if ids:
            uids = set(Memory.objects.filter(id__in=ids).values_list("uid", flat=True))
            audit_record(
                actor=actor,
                action=AuditEvent.Action.MEMORY_RETRY_FAILED,
                uid=uids.pop() if len(uids) == 1 else "",
                target_type="memory",
                target_ids=ids[:AUDIT_MAX_IDS],
                details={"count": len(ids), "asked_for": "these" if memory_ids is not None else "every failed memory"},
            )
    return len(ids)


def memory_delete(*, memory: Memory, actor: Actor) -> None:
    """Soft-delete a memory and remove its vectors (in a task that retries if the store is down)."""
    with transaction.atomic():
        if _memory_soft_delete(memory):
            _audit_memory(actor, AuditEvent.Action.MEMORY_DELETE, memory, status_before=memory.status)


def _audit_memory(actor: Actor, action: str, memory: Memory, *, status_before: str) -> None:
    details = {"status_before": status_before}
    audit_record(
        actor=actor, action=action, uid=memory.uid, target_type="memory", target_ids=[memory.id], details=details
    )


def _memory_soft_delete(memory: Memory) -> bool:
    """Mark a memory deleted (False: it was already) and, on commit, remove its vectors (until
    they are, the memory keeps a lease, so that the sweeper sees to it)."""
    from memories.tasks import delete_memory_vectors

    with transaction.atomic():
        deleted = (
            Memory.objects.filter(id=memory.id)
            .exclude(status=Status.DELETED)
            .update(
                status=Status.DELETED,
                claimed_at=None,
                claim_token=None,
                searchable=False,
                lease_until=timezone.now() + _queue_lease(),
            )
        )
        transaction.on_commit(partial(_send, delete_memory_vectors, [memory.id], [memory.id]))
        if deleted:  # e.g. webhooks; in this transaction
            memory_deleted.send(sender=Memory, memory_ids=[memory.id])
    return bool(deleted)


def memory_remove_vectors(*, memory_id: int, attempt: int = 0) -> None:
    """Remove a deleted memory's vectors (store and database); then nothing is pending on it. A
    transient failure holds it for the retry (`attempt`: the retries so far) before the sweeper may."""
    memory = Memory.objects.filter(id=memory_id, status=Status.DELETED).first()
    if memory is None:
        return
    try:
        memory_vectors_delete(memory=memory)
    except BackendError as exc:
        if not exc.permanent:
            lease = timezone.now() + lease_after_retry(attempt)
            Memory.objects.filter(id=memory_id, status=Status.DELETED).update(lease_until=lease)
        raise
    Memory.objects.filter(id=memory_id, status=Status.DELETED).update(lease_until=None)


@dataclass
class Sweep:
    """What a sweep sent again: memories to process, deleted ones whose vectors are to be removed,
    and those failed because their worker was lost too often."""

    queued: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many memories it left in each state (`manage.py sweep` prints them)."""
        return {
            "sent to the pipeline again": len(self.queued),
            "deleted whose vectors are to be removed": len(self.deleted),
            "failed (worker lost too often)": len(self.failed),
        }


WORKER_LOST = "its worker was lost (killed, or out of memory?) each of the {} times it was processed"


def pipeline_sweep(*, limit: int = 1000, batch: int = 16) -> Sweep:
    """Send again the work whose lease has passed, whatever became of its message or worker (the
    database is the source of truth): memories `queued`, or `processing` by a worker that stopped
    renewing its lease, are queued again and sent to the pipeline, `batch` per task; deleted
    memories whose vectors were not removed are sent to have them removed. A memory whose worker
    was lost while processing it more than PIPELINE_MAX_RETRIES times in a row is `failed`, with
    the reason. Concurrent sweeps skip each other's rows; at most `limit` memories per sweep."""
    from memories.tasks import delete_memory_vectors

    now = timezone.now()
    sweep = Sweep()
    with transaction.atomic():
        due = list(
            Memory.objects.select_for_update(skip_locked=True)
            .filter(status__in=[Status.QUEUED, Status.PROCESSING, Status.DELETED], lease_until__lt=now)
            .order_by("lease_until")
            .values_list("id", "status", "attempts")[:limit]
        )
        lost = [(id_, attempts) for id_, status, attempts in due if status == Status.PROCESSING]
        for memory_id, attempts in lost:
            if attempts > settings.PIPELINE_MAX_RETRIES:
                sweep.failed.append(memory_id)
                Memory.objects.filter(id=memory_id).update(
                    status=Status.FAILED,
                    claim_token=None,
                    lease_until=None,
                    searchable=False,
                    failure_reason=WORKER_LOST.format(attempts),
                )
        if sweep.failed:  # e.g. webhooks; in this transaction
            memory_failed.send(sender=Memory, memory_ids=sweep.failed)
        Memory.objects.filter(id__in=[id_ for id_, _ in lost if id_ not in sweep.failed]).update(
            status=Status.QUEUED,
            claim_token=None,
            failure_reason="queued again: the worker processing it stopped renewing its lease",
        )
        sweep.queued = [id_ for id_, status, _ in due if status != Status.DELETED and id_ not in sweep.failed]
        sweep.deleted = [id_ for id_, status, _ in due if status == Status.DELETED]
        Memory.objects.filter(id__in=sweep.queued + sweep.deleted).update(lease_until=now + _queue_lease())
        for start in range(0, len(sweep.queued), batch):
            _enqueue_on_commit(sweep.queued[start : start + batch])
        for memory_id in sweep.deleted:
            transaction.on_commit(partial(_send, delete_memory_vectors, [memory_id], [memory_id]))
    if lost:  # a worker died, or stopped renewing its leases (its database connection went away)
        logger.warning(
            "sweep: %d memories whose worker stopped renewing its lease taken back (%d of them failed)",
            len(lost),
            len(sweep.failed),
        )
    if due:
        logger.info(
            "sweep: %d memories sent to the pipeline again, %d deleted ones to have their vectors removed",
            len(sweep.queued),
            len(sweep.deleted),
        )
    return sweep


def user_erase(*, uid: str, actor: Actor) -> tuple[int, int]:
    """Soft-delete every memory of a user and remove all of their vectors (the store's and the
    database's). Returns (memories deleted, vectors removed). The memories are marked and the
    erasure recorded together; the vectors go after (a failure there leaves them for a rerun)."""
    with transaction.atomic():
        erased = list(
            Memory.objects.select_for_update()
            .filter(uid=uid)
            .exclude(status=Status.DELETED)
            .values_list("id", flat=True)
        )
        deleted = Memory.objects.filter(id__in=erased).update(
            status=Status.DELETED,
            claimed_at=None,
            claim_token=None,
            searchable=False,
            lease_until=timezone.now() + _queue_lease(),  # the sweeper's, if the store fails below
        )
        audit_record(
            actor=actor, action=AuditEvent.Action.USER_ERASE, uid=uid, target_type="user", details={"memories": deleted}
        )
        if erased:  # e.g. webhooks; in this transaction
            memory_deleted.send(sender=Memory, memory_ids=erased)
    removed = user_vectors_erase(uid=uid)
    Memory.objects.filter(uid=uid, status=Status.DELETED).update(lease_until=None)
    return deleted, removed


def memory_merge_into(*, memory: Memory, into: Memory) -> None:
    """Merge one memory of a user into another of the same user: its action items and events move
    to `into` (except those `into` has already: the same description; the same title and start),
    each remembering where it came from, and `memory` is deleted (its vectors removed) and
    remembers `into` (`merged_into`; `memory_unmerge` undoes it all). Call it
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
    Memory.objects.filter(id=memory.id).update(merged_into=into)
    _memory_soft_delete(memory)


def memory_unmerge(*, memory: Memory) -> None:
    """Undo `memory_merge_into`: the action items and events that came from the merged-away
    `memory` go back to it, and it is queued through the pipeline again: its vectors are built and
    stored again (search finds it again; the duplicate check that follows its indexing raises its
    pairs again), and its own items are extracted again (a completed one stays completed; those
    merged into it from others are kept). Call it in a transaction that holds the row."""
    if memory.status != Status.DELETED or memory.merged_into_id is None:
        raise Conflict(f"memory {memory.id} is not merged into another")
    # Its own items, and those of the memories merged into it before (an item remembers its first
    # origin), wherever later merges took them.
    origins, found = {memory.id}, [memory.id]
    while found:
        found = list(
            Memory.objects.filter(merged_into_id__in=found).exclude(id__in=origins).values_list("id", flat=True)
        )
        origins.update(found)
    for items in (ActionItem.objects, Event.objects):
        items.filter(merged_from_id__in=origins).exclude(memory_id=memory.id).update(memory_id=memory.id)
        items.filter(memory_id=memory.id, merged_from_id=memory.id).update(merged_from_id=None)
    Memory.objects.filter(id=memory.id).update(merged_into=None, **_requeued())
    _enqueue_on_commit([memory.id])


# API keys


def api_key_create(
    *, name: str, uid: str = "", admin: bool = False, expires_at: datetime | None = None, actor: Actor
) -> tuple[ApiKey, str]:
    """A new API key (for one user, or `uid` "" for every user; `admin`: for every user and with
    the admin scope; usable until `expires_at`, or until revoked when None). The raw key is
    returned once; only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > ApiKey._meta.get_field("name").max_length:
        raise ValidationFailed("a key needs a name of 1 to 100 characters", details={"field": "name"})
    if uid and not re.fullmatch(UID_PATTERN, uid):
        raise ValidationFailed(f"uid {uid!r} is not a valid user id", details={"field": "uid"})
    if uid and admin:
        raise ValidationFailed("an admin key acts for every user: leave its user empty", details={"field": "uid"})
    _check_expiry(expires_at)
    raw = "omk_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            prefix=raw[:12],
            key_hash=ApiKey.hash(raw),
            uid=uid or "",
            admin=admin,
            expires_at=expires_at,
            created_by=_by(actor),
        )
        _audit_key(actor, AuditEvent.Action.API_KEY_CREATE, key, {"expires_at": _iso(expires_at), "admin": admin})
    return key, raw


def api_key_revoke(*, key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key now: the next request with it gets 401."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(id=key.id, revoked_at=None).update(
            revoked_at=timezone.now(), revoked_by=_by(actor)
        )
        if not revoked:
            raise Conflict(f"API key {key.prefix}… is revoked already")
        _audit_key(actor, AuditEvent.Action.API_KEY_REVOKE, key, {})
    key.refresh_from_db()
    return key


def api_key_expire(*, key: ApiKey, expires_at: datetime, actor: Actor) -> ApiKey:
    """Set when a key stops working (e.g. the end of a rotation's grace period); it must be in
    the future: to stop a key now, revoke it."""
    _check_expiry(expires_at)
    with transaction.atomic():
        before = ApiKey.objects.select_for_update().filter(id=key.id).values_list("revoked_at", "expires_at").first()
        if before is None or before[0] is not None:
            raise Conflict(f"API key {key.prefix}… is revoked; its expiry cannot change")
        ApiKey.objects.filter(id=key.id).update(expires_at=expires_at)
        details = {"expires_at": _iso(expires_at), "expires_at_before": _iso(before[1])}
        _audit_key(actor, AuditEvent.Action.API_KEY_EXPIRE, key, details)
    key.refresh_from_db()
    return key


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(
            "the expiry must be in the future (to stop a key now, revoke it)", details={"field": "expires_at"}
        )
    if expires_at is not None and not bounds.moment_in_range(expires_at):
        raise ValidationFailed(f"the expiry must be {bounds.dates_rule()}", details={"field": "expires_at"})


def _by(actor: Actor) -> str:
    """Who created or revoked a key, as the key shows it: the dashboard user, or "command"."""
    return actor.name if actor.kind == USER else actor.kind


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _audit_key(actor: Actor, action: str, key: ApiKey, details: dict) -> None:
    details = {"name": key.name, "prefix": key.prefix, "scope": key.uid or "all users", **details}
    audit_record(actor=actor, action=action, uid=key.uid, target_type="api_key", target_ids=[key.id], details=details)


# The audit trail

AUDIT_MAX_IDS = 1000  # target ids kept on one record (a retry of every failed memory may name more)


def audit_record(
    *,
    actor: Actor,
    action: str,
    uid: str = "",
    target_type: str = "",
    target_ids: list | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Record one destructive or privileged action. Call it inside the transaction that does the
    action, so that both commit or neither does."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record an action inside the transaction that does it (transaction.atomic)")
    return AuditEvent.objects.create(
        action=action,
        actor_type=actor.kind,
        actor_name=actor.name,
        actor_user_id=actor.user_id,
        actor_key_id=actor.api_key_id,
        origin=actor.origin,
        ip_address=actor.ip_address,
        user_agent=actor.user_agent,
        uid=uid or "",
        target_type=target_type,
        target_ids=list(target_ids or []),
        details=details or {},
    )
