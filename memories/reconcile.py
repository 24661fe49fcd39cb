"""Reconciliation: the vectors the database expects against those the vector store holds.

The database is the source of truth: each indexed memory keeps its vectors, ids included, in
`MemoryVector`. A reconciliation (of one user, or of every user) goes in two passes, a batch at a
time, so that it never holds more than a batch of vectors (MEMORY_BATCH memories' ids and
metadata; a page of listed ids):

1. **expected**: the indexed memories, by id, and their vector ids; the store's metadata for
   those ids (fetched in its batches). An id the store lacks is `missing`; one whose metadata
   (uid, memory_id, created_at, category, source, kind) differs from the memory's is `metadata`.
   An indexed memory with no vectors in the database is `missing` too (only reprocessing it helps).
2. **listed**: the store's ids (one user's, or the whole namespace), a page at a time; an id that
   is no indexed memory's is an `orphan`: a vector of a deleted or failed memory, of no memory at
   all, or an old vector of an indexed memory. The memory is read from the vector's metadata.

Memories in the queue or being processed are skipped (their vectors are in flight), and so are
findings about a memory that changed while it was checked. With `repair`, missing and mismatched
vectors are upserted again from the vectors kept in the database (nothing is embedded again;
vectors of a model other than the store's are left, and said so) and orphans are deleted.

Runs are kept as `ReconcileRun`: started from the pipeline page (an admin, audited), by the
`reconcile` command (audited) or by the periodic task `reconcile_vectors` (Celery beat).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from omi_memory.actors import API, Actor
from omi_memory.errors import BackendError, Conflict

from .models import AuditEvent, Memory, MemoryVector, ReconcileRun
from .parts.vectorstores import UpsertIncomplete, VectorRecord, VectorStore, get_vector_store
from .services import audit_record
from .vectors import vector_metadata

logger = logging.getLogger(__name__)
Status = Memory.Status

MISSING, ORPHAN, METADATA = "missing", "orphan", "metadata"
KINDS = (MISSING, ORPHAN, METADATA)
MEMORY_BATCH = 250  # indexed memories read at once (with up to ~16 vectors each)
FINDINGS_KEPT = 20  # findings of each kind kept on a run (the counts are complete)
COMPARED = ("uid", "memory_id", "created_at", "category", "source", "kind")


@dataclass
class Finding:
    kind: str  # MISSING, ORPHAN or METADATA
    vector_id: str
    uid: str
    memory_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<8} {self.vector_id}  {self.detail}"


@dataclass
class ReconcileReport:
    store: str
    uid: str | None
    repair: bool
    memories_checked: int = 0
    vectors_checked: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    findings: list[Finding] = field(default_factory=list)  # the first FINDINGS_KEPT of each kind
    repaired: int = 0
    removed: int = 0
    problems: list[str] = field(default_factory=list)  # what could not be repaired, and why

    @property
    def found(self) -> int:
        return sum(self.counts.values())

    def add(self, finding: Finding) -> None:
        if self.counts[finding.kind] < FINDINGS_KEPT:
            self.findings.append(finding)
        self.counts[finding.kind] += 1

    def problem(self, text: str) -> None:
        """Something that could not be repaired (the first FINDINGS_KEPT are kept)."""
        if len(self.problems) < FINDINGS_KEPT:
            self.problems.append(text)
        elif len(self.problems) == FINDINGS_KEPT:
            self.problems.append("... and more")

    def summary(self) -> str:
        scope = f"uid {self.uid}" if self.uid else "every user"
        text = (
            f"{self.store}, {scope}: {self.memories_checked} indexed memories, "
            f"{self.vectors_checked} vectors checked; {self.counts[MISSING]} missing, "
            f"{self.counts[ORPHAN]} orphaned, {self.counts[METADATA]} with other metadata"
        )
        if self.repair:
            text += f"; {self.repaired} upserted again, {self.removed} orphans removed"
        return text


Progress = Callable[[ReconcileReport, str, int, int | None], None]  # (report, pass, advanced by, total)


def reconcile(
    *, uid: str | None = None, repair: bool = False, progress: Progress | None = None, batch: int = MEMORY_BATCH
) -> ReconcileReport:
    """Compare the database's expected vectors (one user's, or every user's) with the store, and
    with `repair` put right what differs (see the module's docstring)."""
    store = get_vector_store()
    report = ReconcileReport(store=store.identity, uid=uid, repair=repair)
    progress = progress or (lambda *args: None)
    _check_expected(store, report, uid=uid, batch=batch, progress=progress)
    _check_listed(store, report, uid=uid, progress=progress)
    return report


def _check_expected(store: VectorStore, report: ReconcileReport, *, uid, batch: int, progress: Progress) -> None:
    memories = Memory.objects.filter(status=Status.INDEXED, claim_token=None)
    if uid is not None:
        memories = memories.filter(uid=uid)
    total = memories.count()
    fields = ("id", "uid", "created_at", "category", "source", "status", "indexed_at", "claim_token")
    last = 0
    while rows := list(memories.filter(id__gt=last).order_by("id").only(*fields)[:batch]):
        last = rows[-1].id
        by_id = {memory.id: memory for memory in rows}
        expected: dict[str, tuple[Memory, str]] = {
            vector_id: (by_id[memory_id], kind)
            for vector_id, memory_id, kind in MemoryVector.objects.filter(memory_id__in=by_id).values_list(
                "vector_id", "memory_id", "kind"
            )
        }
        stored = store.fetch_metadata(list(expected))
        findings: list[tuple[Finding, Memory, str]] = []
        for vector_id, (memory, kind) in expected.items():
            want = vector_metadata(memory, kind)
            have = stored.get(vector_id)
            if have is None:
                detail = f"not in the store, a vector of memory {memory.id} (indexed)"
                findings.append((_finding(MISSING, vector_id, memory, detail), memory, kind))
            elif differences := _differences(want, have):
                findings.append((_finding(METADATA, vector_id, memory, differences), memory, kind))
        with_vectors = {memory.id for memory, _ in expected.values()}
        for memory in rows:
            if memory.id not in with_vectors:
                detail = f"memory {memory.id} is indexed but the database keeps no vectors of it: reprocess it"
                findings.append((_finding(MISSING, memory.vector_id, memory, detail), memory, ""))
        findings = _as_read(findings, {memory.id: memory for _, memory, _ in findings})
        for finding, _, _ in findings:
            report.add(finding)
        report.memories_checked += len(rows)
        report.vectors_checked += len(expected)
        if report.repair:
            _upsert_again(store, report, [(f.vector_id, memory, kind) for f, memory, kind in findings if kind])
        progress(report, "expected", len(rows), total)


def _check_listed(store: VectorStore, report: ReconcileReport, *, uid, progress: Progress) -> None:
    for page in store.list_ids(uid=uid):
        indexed = set(
            MemoryVector.objects.filter(vector_id__in=page, memory__status=Status.INDEXED).values_list(
                "vector_id", flat=True
            )
        )
        candidates = [vector_id for vector_id in page if vector_id not in indexed]
        stored = store.fetch_metadata(candidates) if candidates else {}
        report.vectors_checked += len(stored)
        owners = {vector_id: _memory_id(metadata) for vector_id, metadata in stored.items()}
        states = {
            memory_id: (status, claim_token)
            for memory_id, status, claim_token in Memory.objects.filter(
                id__in={memory_id for memory_id in owners.values() if memory_id is not None}
            ).values_list("id", "status", "claim_token")
        }
        recorded = set(  # indexed memories whose vectors the database keeps (one that keeps none is `missing`)
            MemoryVector.objects.filter(
                memory_id__in=[memory_id for memory_id, (status, _) in states.items() if status == Status.INDEXED]
            )
            .values_list("memory_id", flat=True)
            .order_by()
            .distinct()
        )
        orphans: list[Finding] = []
        for vector_id, metadata in stored.items():
            if uid is not None and metadata.get("uid") != uid:
                continue  # another user's, whose id starts alike
            memory_id = owners[vector_id]
            status, claim_token = states.get(memory_id, (None, None))
            if status in (Status.QUEUED, Status.PROCESSING) or claim_token is not None:
                continue  # in flight: its vectors are being written
            if status is None:
                detail = f"no memory {memory_id}" if memory_id is not None else "no memory_id in its metadata"
            elif status == Status.INDEXED:
                if memory_id not in recorded:
                    continue  # its vectors are not known: reprocessing it (see `missing`) replaces them
                detail = f"not one of the vectors of memory {memory_id} (indexed)"
            else:
                detail = f"memory {memory_id} is {status}"
            orphans.append(Finding(ORPHAN, vector_id, str(metadata.get("uid", "")), memory_id, detail))
        orphans = _still_orphans(orphans, states)
        for finding in orphans:
            report.add(finding)
        if report.repair and orphans:
            ids = [finding.vector_id for finding in orphans]
            try:
                store.delete(ids)
                report.removed += len(ids)
            except BackendError as exc:
                report.problem(f"{len(ids)} orphans not removed: {exc}")
        progress(report, "listed", len(page), None)


def _finding(kind: str, vector_id: str, memory: Memory, detail: str) -> Finding:
    return Finding(kind, vector_id, memory.uid, memory.id, detail)


def _differences(want: dict, have: dict) -> str:
    """What differs between the metadata a vector should carry and what the store holds."""
    changed = [name for name in COMPARED if str(have.get(name, "")) != str(want[name])]
    return "; ".join(f"{name}: store {have.get(name)!r}, database {want[name]!r}" for name in changed)


def _memory_id(metadata: dict) -> int | None:
    value = str(metadata.get("memory_id", ""))
    return int(value) if value.isdigit() else None


def _as_read(findings: list, memories: dict[int, Memory]) -> list:
    """The findings whose memory is still as it was read (indexed, not claimed, not indexed
    again since): a memory that changed meanwhile was not drifting, only moving."""
    if not findings:
        return findings
    now = {
        memory_id: (status, indexed_at, claim_token)
        for memory_id, status, indexed_at, claim_token in Memory.objects.filter(id__in=memories).values_list(
            "id", "status", "indexed_at", "claim_token"
        )
    }
    unchanged = {
        memory_id
        for memory_id, memory in memories.items()
        if now.get(memory_id) == (Status.INDEXED, memory.indexed_at, None)
    }
    return [entry for entry in findings if entry[1].id in unchanged]


def _still_orphans(orphans: list[Finding], states: dict) -> list[Finding]:
    """The orphans that still are: their memory is in the state it was read in, and the vector
    has not become one of an indexed memory's meanwhile."""
    if not orphans:
        return orphans
    ids = [finding.vector_id for finding in orphans]
    adopted = set(
        MemoryVector.objects.filter(vector_id__in=ids, memory__status=Status.INDEXED).values_list(
            "vector_id", flat=True
        )
    )
    memory_ids = {finding.memory_id for finding in orphans if finding.memory_id is not None}
    now = dict(
        (memory_id, (status, claim_token))
        for memory_id, status, claim_token in Memory.objects.filter(id__in=memory_ids).values_list(
            "id", "status", "claim_token"
        )
    )
    return [
        finding
        for finding in orphans
        if finding.vector_id not in adopted and now.get(finding.memory_id) == states.get(finding.memory_id)
    ]


def _upsert_again(store: VectorStore, report: ReconcileReport, targets: list[tuple[str, Memory, str]]) -> None:
    """Write these vectors again from the database, with the metadata their memory gives them."""
    if not targets:
        return
    wanted = {vector_id: (memory, kind) for vector_id, memory, kind in targets}
    records, other_models = [], {}
    for vector_id, model, dim, blob in MemoryVector.objects.filter(vector_id__in=wanted).values_list(
        "vector_id", "model", "dim", "vector"
    ):
        memory, kind = wanted[vector_id]
        try:
            store.check_model(model, dim)
        except BackendError as exc:  # made by another model than the store's: never mixed in
            other_models.setdefault(str(exc), []).append(vector_id)
            continue
        row = MemoryVector(vector=blob)
        records.append(VectorRecord(id=vector_id, values=row.as_array(), metadata=vector_metadata(memory, kind)))
    for reason, ids in other_models.items():
        report.problem(f"{len(ids)} vectors ({ids[0]}, ...) not upserted again: {reason}")
    if not records:
        return
    try:
        store.upsert(records)
        report.repaired += len(records)
    except UpsertIncomplete as exc:
        report.repaired += len(exc.acknowledged & set(wanted))
        report.problem(f"{len(records) - len(exc.acknowledged)} vectors not upserted again: {exc}")
    except BackendError as exc:
        report.problem(f"{len(records)} vectors not upserted again: {exc}")


# Runs: stored, started by an admin, the command or the schedule


def reconcile_run_create(*, uid: str = "", repair: bool = False, trigger: str, actor: Actor | None) -> ReconcileRun:
    """A queued run; one started by someone (an admin, a command) is recorded in the audit trail.
    Refused while another run is under way."""
    with transaction.atomic():
        _give_up_stale_runs()
        busy = (
            ReconcileRun.objects.select_for_update()
            .filter(status__in=[ReconcileRun.Status.QUEUED, ReconcileRun.Status.RUNNING])
            .first()
        )
        if busy is not None:
            raise Conflict(f"reconciliation #{busy.id} is under way (started {busy.created_at:%Y-%m-%d %H:%M} UTC)")
        run = ReconcileRun.objects.create(
            trigger=trigger,
            started_by=actor.name if actor else "",
            uid=uid or "",
            repair=repair,
            store=get_vector_store().identity,
        )
        if actor is not None:
            audit_record(
                actor=actor,
                action=AuditEvent.Action.VECTORS_RECONCILE,
                uid=run.uid,
                target_type="reconcile_run",
                target_ids=[run.id],
                details={"repair": repair, "scope": run.uid or "every user", "store": run.store},
            )
    return run


def reconcile_run_start(*, uid: str = "", repair: bool = False, actor: Actor) -> ReconcileRun:
    """A run started from the dashboard or the API: stored (and audited), then done by a task."""
    from .tasks import reconcile_vectors

    trigger = ReconcileRun.Trigger.API if actor.origin == API else ReconcileRun.Trigger.DASHBOARD
    with transaction.atomic():
        run = reconcile_run_create(uid=uid, repair=repair, trigger=trigger, actor=actor)
        transaction.on_commit(partial(reconcile_vectors.delay, run.id))
    return run


def reconcile_run_execute(*, run_id: int, progress: Progress | None = None) -> ReconcileRun:
    """Do a queued run (claimed first: a second delivery does nothing) and store what it found;
    an error is stored on it as `failed`."""
    claimed = ReconcileRun.objects.filter(id=run_id, status=ReconcileRun.Status.QUEUED).update(
        status=ReconcileRun.Status.RUNNING, updated_at=timezone.now(), progress="starting"
    )
    run = ReconcileRun.objects.get(id=run_id)
    if not claimed:
        return run
    reported = [0.0]

    def heartbeat(report: ReconcileReport, stage: str, advanced: int, total: int | None) -> None:
        if progress is not None:
            progress(report, stage, advanced, total)
        if time.monotonic() - reported[0] >= 2:
            reported[0] = time.monotonic()
            what = "indexed memories" if stage == "expected" else "the store's vectors"
            ReconcileRun.objects.filter(id=run_id).update(
                updated_at=timezone.now(),
                progress=f"checking {what}: {report.memories_checked} memories, {report.vectors_checked} vectors",
                **_counts(report),
            )

    try:
        report = reconcile(uid=run.uid or None, repair=run.repair, progress=heartbeat)
    except Exception as exc:  # recorded on the run, whatever it was
        logger.exception("reconciliation #%s failed", run_id)
        ReconcileRun.objects.filter(id=run_id).update(
            status=ReconcileRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            progress="",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
    else:
        logger.log(
            logging.WARNING if report.found else logging.INFO, "reconciliation #%s: %s", run_id, report.summary()
        )
        ReconcileRun.objects.filter(id=run_id).update(
            status=ReconcileRun.Status.DONE,
            progress="",
            error="\n".join(report.problems)[:2000],
            findings=[asdict(finding) for finding in report.findings],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
            **_counts(report),
        )
    run.refresh_from_db()
    return run


def reconcile_scheduled() -> ReconcileRun | None:
    """The periodic run (repairing when RECONCILE_REPAIR is on); None when one is under way."""
    try:
        run = reconcile_run_create(repair=settings.RECONCILE_REPAIR, trigger=ReconcileRun.Trigger.SCHEDULE, actor=None)
    except Conflict as exc:
        logger.info("periodic reconciliation skipped: %s", exc)
        return None
    return reconcile_run_execute(run_id=run.id)


def _counts(report: ReconcileReport) -> dict:
    return {
        "memories_checked": report.memories_checked,
        "vectors_checked": report.vectors_checked,
        "missing": report.counts[MISSING],
        "orphaned": report.counts[ORPHAN],
        "mismatched": report.counts[METADATA],
        "repaired": report.repaired,
        "removed": report.removed,
    }


def _give_up_stale_runs() -> None:
    """Runs that made no progress for STALE_AFTER lost their worker (or their message): failed."""
    stale_after = ReconcileRun.STALE_AFTER
    stale = ReconcileRun.objects.filter(
        status__in=[ReconcileRun.Status.QUEUED, ReconcileRun.Status.RUNNING],
        updated_at__lt=timezone.now() - stale_after,
    )
    stale.update(
        status=ReconcileRun.Status.FAILED,
        error=f"no progress for {stale_after.seconds // 60} minutes: its worker stopped",
        finished_at=timezone.now(),
    )
