"""Duplicate memories: pairs of one user's memories whose vectors are nearly the same.

`similar_pairs` finds them in a matrix of unit vectors with block matrix products (never a loop
over pairs); `duplicate_scan` runs it over one user or every user, `duplicate_check_memories` checks
newly indexed memories against their user's others (one matrix product), and both keep the
results as `DuplicatePair` rows for an admin to merge or dismiss. A pair never links two users: the
matrices are built per uid. A dismissed or resolved pair is never opened again.
"""

import logging
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from memories.models import AuditEvent, Memory, MemoryVector
from memories.selectors import memory_vectors_matrix, memory_vectors_similar
from memories.services import audit_record, memory_merge_into, memory_unmerge
from omi_memory.actors import Actor
from omi_memory.errors import Conflict, NotFound, ValidationFailed

from ..models import DuplicatePair, DuplicateScan
from ..signals import duplicate_found
from .jobs import job_claim, job_heartbeat, job_send

logger = logging.getLogger(__name__)
Pair = DuplicatePair.Status


def similar_pairs(matrix: np.ndarray, threshold: float, block: int = 1024) -> list[tuple[int, int, float]]:
    """Every (i, j, cosine) with i < j and cosine >= threshold among the rows of a matrix of unit
    vectors: one matrix product per block of the upper triangle, `np.nonzero` on each."""
    n = len(matrix)
    pairs: list[tuple[int, int, float]] = []
    for top in range(0, n, block):
        rows = matrix[top : top + block]
        for left in range(top, n, block):
            scores = rows @ matrix[left : left + block].T
            hits = scores >= threshold
            if left == top:  # the diagonal block: only above its diagonal
                hits = np.triu(hits, k=1)
            i, j = np.nonzero(hits)
            pairs.extend(zip((i + top).tolist(), (j + left).tolist(), scores[i, j].astype(float).tolist()))
    return pairs


def _threshold(threshold: float | None) -> float:
    value = settings.DUPLICATE_THRESHOLD if threshold is None else float(threshold)
    if not 0.0 < value <= 1.0:
        raise ValidationFailed(f"threshold must be in (0, 1], got {value}", details={"field": "threshold"})
    return value


def _save_pairs(uid: str, found: dict[tuple[int, int], float]) -> dict[str, int]:
    """Upsert pairs (keys ordered a < b): a new one is opened, an open one gets its similarity
    refreshed, a dismissed or resolved one is left alone."""
    counts = {"created": 0, "refreshed": 0, "kept_closed": 0}
    if not found:
        return counts
    ids = {memory_id for key in found for memory_id in key}
    existing = {
        (pair.memory_a_id, pair.memory_b_id): pair
        for pair in DuplicatePair.objects.filter(uid=uid, memory_a_id__in=ids, memory_b_id__in=ids)
    }
    new, changed = [], []
    for (a, b), similarity in found.items():
        pair = existing.get((a, b))
        if pair is None:
            new.append(DuplicatePair(uid=uid, memory_a_id=a, memory_b_id=b, similarity=similarity))
        elif pair.status != Pair.OPEN:
            counts["kept_closed"] += 1
        elif abs(pair.similarity - similarity) > 1e-6:
            pair.similarity = similarity
            changed.append(pair)
    # ignore_conflicts: a check running at the same time may have just opened the same pair.
    started = timezone.now()
    DuplicatePair.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    DuplicatePair.objects.bulk_update(changed, ["similarity"], batch_size=1000)
    counts["created"], counts["refreshed"] = len(new), len(changed)
    if new and duplicate_found.has_listeners(DuplicatePair):  # e.g. webhooks; in this transaction
        _announce_new(uid, {(p.memory_a_id, p.memory_b_id) for p in new}, started)
    return counts


def _announce_new(uid: str, keys: set[tuple[int, int]], since) -> None:
    """Send `duplicate_found` with the ids of the pairs just opened (ids are given by the database)."""
    opened = DuplicatePair.objects.filter(
        uid=uid,
        created_at__gte=since,
        memory_a_id__in={a for a, _ in keys},
        memory_b_id__in={b for _, b in keys},
    ).values_list("id", "memory_a_id", "memory_b_id")
    pair_ids = [id_ for id_, a, b in opened if (a, b) in keys]
    if pair_ids:
        duplicate_found.send(sender=DuplicatePair, pair_ids=pair_ids)


def _refresh_open(uid: str, ids: list[int], matrix: np.ndarray) -> int:
    """Open pairs of a user: drop those with a deleted memory, recompute the similarity of the
    others from the matrix (a reprocessed memory may have moved). Returns how many were dropped."""
    dropped, _ = (
        DuplicatePair.objects.filter(uid=uid, status=Pair.OPEN)
        .filter(Q(memory_a__status=Memory.Status.DELETED) | Q(memory_b__status=Memory.Status.DELETED))
        .delete()
    )
    position = {memory_id: row for row, memory_id in enumerate(ids)}
    pairs = [
        p
        for p in DuplicatePair.objects.filter(uid=uid, status=Pair.OPEN)
        if p.memory_a_id in position and p.memory_b_id in position
    ]
    if pairs:
        a = matrix[[position[p.memory_a_id] for p in pairs]]
        b = matrix[[position[p.memory_b_id] for p in pairs]]
        for pair, similarity in zip(pairs, np.einsum("ij,ij->i", a, b).tolist()):
            pair.similarity = similarity
        DuplicatePair.objects.bulk_update(pairs, ["similarity"], batch_size=1000)
    return dropped


def duplicate_scan(*, uid: str | None = None, threshold: float | None = None) -> dict[str, int]:
    """Find every pair over the threshold for one user, or for every user with indexed memories,
    and keep them for review. Returns counts: users, memories, pairs found, created, refreshed,
    kept_closed (found again but dismissed or resolved), dropped (open with a deleted memory)."""
    threshold = _threshold(threshold)
    if uid is None:
        uids = list(
            MemoryVector.objects.filter(position=0, memory__status=Memory.Status.INDEXED)
            .values_list("memory__uid", flat=True)
            .distinct()
            .order_by("memory__uid")
        )
    else:
        uids = [uid]
    totals = {"users": 0, "memories": 0, "pairs": 0, "created": 0, "refreshed": 0, "kept_closed": 0, "dropped": 0}
    for one in uids:
        ids, matrix = memory_vectors_matrix(uid=one)
        found = {(ids[i], ids[j]): s for i, j, s in similar_pairs(matrix, threshold)}  # ids ascend: a < b
        with transaction.atomic():
            counts = _save_pairs(one, found)
            totals["dropped"] += _refresh_open(one, ids, matrix)
        totals["users"] += 1
        totals["memories"] += len(ids)
        totals["pairs"] += len(found)
        for key, value in counts.items():
            totals[key] += value
    logger.info("duplicate scan (%s, threshold %.3f): %s", uid or "every user", threshold, totals)
    return totals


def duplicate_check_memories(*, memory_ids: list[int], threshold: float | None = None) -> dict[str, int]:
    """The incremental check: each newly indexed memory against the other memories of its user,
    one matrix product per user (a matrix-vector product for one memory), over the user's matrix
    kept in this process (`memories.selectors.memory_vectors_similar`: only what changed is read)."""
    threshold = _threshold(threshold)
    totals = {"memories": 0, "pairs": 0, "created": 0, "refreshed": 0, "kept_closed": 0}
    by_uid: dict[str, list[int]] = {}
    for memory_id, uid in Memory.objects.filter(id__in=memory_ids, status=Memory.Status.INDEXED).values_list(
        "id", "uid"
    ):
        by_uid.setdefault(uid, []).append(memory_id)
    for uid, new_ids in by_uid.items():
        found = memory_vectors_similar(uid=uid, memory_ids=new_ids, threshold=threshold)
        with transaction.atomic():
            counts = _save_pairs(uid, found)
        totals["memories"] += len(new_ids)
        totals["pairs"] += len(found)
        for key, value in counts.items():
            totals[key] += value
    return totals


def duplicate_check_memory(*, memory_id: int, threshold: float | None = None) -> dict[str, int]:
    """The incremental check for one memory (see `duplicate_check_memories`)."""
    return duplicate_check_memories(memory_ids=[memory_id], threshold=threshold)


def duplicate_check_enqueue(*, memory_ids: list[int], **kwargs) -> None:
    """After commit, check newly indexed memories in a task; never raises (the memories are
    indexed whatever happens here). Receives `memories.signals.memory_indexed` (see apps.py)."""
    if not memory_ids:
        return

    def enqueue(ids: list[int]) -> None:
        try:
            from ..tasks import check_duplicates

            check_duplicates.delay(ids)
        except Exception:  # noqa: BLE001 - a broker hiccup must not fail the pipeline
            logger.exception("could not queue the duplicate check of memories %s", ids)

    transaction.on_commit(partial(enqueue, list(memory_ids)))


def duplicate_scan_enqueue(*, uid: str | None = None, threshold: float | None = None, actor: Actor) -> DuplicateScan:
    """Record a queued scan of one user (or, uid None, every user) and run it in a task
    (`duplicate_scan_execute`) once the transaction that records it commits."""
    threshold = _threshold(threshold)
    with transaction.atomic():
        scan = DuplicateScan.objects.create(uid=uid or "", threshold=threshold, created_by_id=actor.user_id)
        audit_record(
            actor=actor,
            action=AuditEvent.Action.DUPLICATES_SCAN,
            uid=uid or "",
            target_type="user" if uid else "",
            details={"threshold": threshold, "users": uid or "every user", "scan": scan.id},
        )
        transaction.on_commit(partial(job_send, DuplicateScan, scan.id))
    return scan


def duplicate_scan_execute(*, scan_id: int) -> str:
    """Do one recorded scan: claim it (`jobs.job_claim`), scan, keep the counts; an error is
    recorded as `failed` with its reason. Returns the final status (or the current one when the
    scan was not claimed)."""
    claimed = job_claim(DuplicateScan, scan_id)
    scan = DuplicateScan.objects.filter(id=scan_id).first()
    if not claimed or scan is None:
        return scan.status if scan else "missing"
    try:
        with job_heartbeat(DuplicateScan, scan_id):
            counts = duplicate_scan(uid=scan.uid or None, threshold=scan.threshold)
    except Exception as exc:  # recorded for its status URL, whatever it was
        logger.exception("duplicate scan %s failed", scan_id)
        DuplicateScan.objects.filter(id=scan_id).update(
            status=DuplicateScan.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        return DuplicateScan.Status.FAILED
    DuplicateScan.objects.filter(id=scan_id).update(
        status=DuplicateScan.Status.DONE, counts=counts, finished_at=timezone.now()
    )
    return DuplicateScan.Status.DONE


def duplicate_scan_get(*, scan_id: int, uid: str | None = None) -> DuplicateScan:
    """One scan, or NotFound: also, for `uid`, a scan of another user or of every user."""
    scans = DuplicateScan.objects.filter(id=scan_id)
    if uid is not None:
        scans = scans.filter(uid=uid)
    scan = scans.first()
    if scan is None:
        raise NotFound(f"duplicate scan {scan_id} not found")
    return scan


def _open_pair_for_update(pair_id: int) -> DuplicatePair:
    pair = DuplicatePair.objects.select_for_update().filter(id=pair_id).first()
    if pair is None:
        raise NotFound(f"duplicate pair {pair_id} not found")
    if pair.status != Pair.OPEN:
        raise Conflict(f"duplicate pair {pair_id} is {pair.status}, not open")
    return pair


def duplicate_pair_merge(*, pair_id: int, keep_id: int, actor: Actor) -> DuplicatePair:
    """Keep one memory of an open pair and merge the other into it (`memories.services.
    memory_merge_into`: its action items and events move, it is deleted); the pair becomes
    `merged`, and the other open pairs of the deleted memory are deleted (nobody judged them, and
    a deleted memory is never raised again anyway)."""
    with transaction.atomic():
        pair = _open_pair_for_update(pair_id)
        if keep_id not in (pair.memory_a_id, pair.memory_b_id):
            raise Conflict(f"memory {keep_id} is not in pair {pair_id}", details={"field": "keep"}, code="not_in_pair")
        other_id = pair.memory_b_id if keep_id == pair.memory_a_id else pair.memory_a_id
        memories = Memory.objects.select_for_update().in_bulk([keep_id, other_id])
        gone = [m.id for m in memories.values() if m.status == Memory.Status.DELETED]
        if gone:
            raise Conflict(f"memory {gone[0]} of pair {pair_id} is deleted already")
        memory_merge_into(memory=memories[other_id], into=memories[keep_id])
        DuplicatePair.objects.filter(status=Pair.OPEN).filter(
            Q(memory_a_id=other_id) | Q(memory_b_id=other_id)
        ).exclude(id=pair.id).delete()
        pair.status, pair.kept_id = Pair.MERGED, keep_id
        pair.resolved_by_id, pair.resolved_at = actor.user_id, timezone.now()
        pair.save(update_fields=["status", "kept", "resolved_by", "resolved_at"])
        _audit_pair(actor, AuditEvent.Action.DUPLICATES_MERGE, pair, kept_memory=keep_id, deleted_memory=other_id)
    logger.info("duplicate pair %s: kept memory %s, merged and deleted memory %s", pair_id, keep_id, other_id)
    return pair


def duplicate_pair_unmerge(*, pair_id: int, actor: Actor) -> DuplicatePair:
    """Undo a merge (`memories.services.memory_unmerge`): the merged-away memory is processed
    again (searchable again once indexed, its other pairs raised again by the duplicate check that
    follows), its action items and events go back to it, and the pair is open again."""
    with transaction.atomic():
        pair = DuplicatePair.objects.select_for_update().filter(id=pair_id).first()
        if pair is None:
            raise NotFound(f"duplicate pair {pair_id} not found")
        if pair.status != Pair.MERGED:
            raise Conflict(f"duplicate pair {pair_id} is {pair.status}, not merged")
        kept_id = pair.kept_id
        other_id = pair.memory_b_id if kept_id == pair.memory_a_id else pair.memory_a_id
        memory = Memory.objects.select_for_update().get(id=other_id)
        if kept_id is None or memory.merged_into_id != kept_id:
            raise Conflict(f"memory {other_id} is not merged into memory {kept_id} any more")
        memory_unmerge(memory=memory)
        pair.status, pair.kept_id, pair.resolved_by_id, pair.resolved_at = Pair.OPEN, None, None, None
        pair.save(update_fields=["status", "kept", "resolved_by", "resolved_at"])
        _audit_pair(actor, AuditEvent.Action.DUPLICATES_UNMERGE, pair, kept_memory=kept_id, restored_memory=other_id)
    logger.info("duplicate pair %s: memory %s unmerged from memory %s", pair_id, other_id, kept_id)
    return pair


def duplicate_pair_dismiss(*, pair_id: int, actor: Actor) -> DuplicatePair:
    """Not duplicates: the pair is dismissed and never raised again."""
    with transaction.atomic():
        pair = _open_pair_for_update(pair_id)
        pair.status, pair.resolved_by_id, pair.resolved_at = Pair.DISMISSED, actor.user_id, timezone.now()
        pair.save(update_fields=["status", "resolved_by", "resolved_at"])
        _audit_pair(actor, AuditEvent.Action.DUPLICATES_DISMISS, pair)
    return pair


def _audit_pair(actor: Actor, action: str, pair: DuplicatePair, **details) -> None:
    audit_record(
        actor=actor,
        action=action,
        uid=pair.uid,
        target_type="duplicate_pair",
        target_ids=[pair.id],
        details={"memories": [pair.memory_a_id, pair.memory_b_id], "similarity": round(pair.similarity, 4), **details},
    )


def duplicate_pair_list(*, uid: str = "", status: str = Pair.OPEN):
    """Pairs for the review queue, most similar first, with both memories; `uid` "" means every
    user, `status` "" any."""
    pairs = DuplicatePair.objects.select_related("memory_a", "memory_b", "resolved_by")
    if uid:
        pairs = pairs.filter(uid=uid)
    if status:
        pairs = pairs.filter(status=status)
    return pairs.order_by("-similarity", "id")


def duplicate_pair_get(*, pair_id: int, uid: str | None = None) -> DuplicatePair:
    """One pair, or NotFound: also, for `uid` (None: any user), another user's pair."""
    pair = duplicate_pair_list(uid=uid or "", status="").filter(id=pair_id).first()
    if pair is None:
        raise NotFound(f"duplicate pair {pair_id} not found")
    return pair
