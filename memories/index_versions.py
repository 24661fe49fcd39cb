"""Index versions: built beside the live one, switched atomically, rolled back, dropped.

A version (`VectorIndex`) is an embedder (model, dimension), the chunking, and a store namespace
of its own. `index_build` fills a new one in batches from the indexed memories, noting after each
batch the last memory done (`cursor`), so a build that was killed continues where it stopped;
meanwhile the pipeline writes every memory to every version kept (`memories.vectors`, double
write), and the build ends with the memories indexed since it started, so nothing is missed.
`index_activate` switches which version searches read and the pipeline writes first, in one
transaction (`memories/parts/versions.py`: every process follows within INDEX_VERSION_TTL).
"""

from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from omi_memory.actors import Actor
from omi_memory.errors import BackendError, Conflict, NotFound, ValidationFailed

from .models import AuditEvent, Memory, VectorIndex
from .parts.embedders import configured_embedder
from .parts.vectorstores import configured_vector_store
from .parts.versions import PART_FIELDS, IndexParts, current_parts, forget, make_embedder, make_store, parts_for
from .services import audit_record
from .vectors import chunking, memory_vectors_write_version

State = VectorIndex.State


def index_version_get(*, name: str) -> VectorIndex:
    """The version called `name` (`v{id}`)."""
    number = name[1:] if name[:1] == "v" else ""
    version = VectorIndex.objects.filter(id=int(number)).first() if number.isdigit() else None
    if version is None or not version.managed:
        raise NotFound(f"there is no index version {name!r} (see `manage.py index_build`)", code="no_index_version")
    return version


def index_version_parts(*, name: str) -> IndexParts:
    """The parts of a built version, to search it (`search_memories(index_version=...)`)."""
    version = index_version_get(name=name)
    if version.state == State.BUILDING:
        raise Conflict(
            f"index version {name} is still being built ({version.memories_done} of {version.memories_total})",
            code="index_version_building",
        )
    return parts_for(**{field: getattr(version, field) for field in PART_FIELDS})


def index_version_isolated_parts(*, name: str | None, namespace: str) -> IndexParts:
    """A version's embedder (None: the active one's) over a local store namespace that nothing
    else writes to, for the evaluation's own data set."""
    from .parts.vectorstores.local import LocalVectorStore

    parts = index_version_parts(name=name) if name else current_parts()
    return IndexParts(parts.version, parts.embedder, LocalVectorStore(namespace=namespace), isolated=True)


def index_version_adopt_live() -> VectorIndex:
    """The live index as a version of its own (its parts noted from the settings), so that it is
    written to and can be switched back to once another is active. The active version if any."""
    with transaction.atomic():
        active = VectorIndex.objects.select_for_update().filter(state=State.ACTIVE).exclude(embedder="").first()
        if active is not None:
            return active
        embedder, store = configured_embedder(), configured_vector_store()
        version, _ = VectorIndex.objects.select_for_update().get_or_create(
            store=store.identity,
            defaults={"model": embedder.model, "dim": embedder.dim, "chunking": chunking(embedder)},
        )
        version.embedder = settings.EMBEDDER
        version.dimensions = getattr(embedder, "dimensions", None)
        version.vector_store = settings.VECTOR_STORE
        version.host = getattr(store, "host", "")
        version.namespace = store.namespace
        version.state = State.ACTIVE
        version.activated_at = version.activated_at or timezone.now()
        version.save()
    forget()
    return version


def index_version_start(
    *, embedder: str, dimensions: int | None, vector_store: str, host: str, actor: Actor
) -> tuple[VectorIndex, bool]:
    """A version to build with these parts: the unfinished build of the same parts (resumed:
    True), or a new one in a namespace of its own."""
    if vector_store == "pinecone" and not host:
        raise ValidationFailed("a Pinecone version needs its index host (PINECONE_HOST or --pinecone-host)")
    try:
        made = make_embedder(embedder, dimensions)
    except (ImportError, TypeError, ImproperlyConfigured) as exc:
        raise ValidationFailed(f"no embedder {embedder!r} with dimensions {dimensions}: {exc}") from exc
    if dimensions and made.dim != dimensions:
        raise ValidationFailed(f"the {embedder} embedder makes {made.dim} dimensions, not {dimensions}")
    live = index_version_adopt_live()
    same = {"embedder": embedder, "dimensions": dimensions, "vector_store": vector_store, "host": host}
    unfinished = VectorIndex.objects.filter(state=State.BUILDING, **same).order_by("-id").first()
    if unfinished is not None:
        return unfinished, True
    with transaction.atomic():
        version = VectorIndex.objects.create(
            store=f"building/{timezone.now().timestamp()}",
            model=made.model,
            dim=made.dim,
            chunking=chunking(made),
            state=State.BUILDING,
            started_at=timezone.now(),
            **same,
        )
        version.namespace = f"{live.namespace}-{version.name}"
        store = make_store(vector_store, host, version.namespace)
        enforced = store.dimension()
        if enforced is not None and enforced != made.dim:
            raise ValidationFailed(
                f"the {vector_store} index at {host} has dimension {enforced}; {made.model} makes {made.dim}: "
                "give the host of an index of that dimension"
            )
        version.store = store.identity
        version.save(update_fields=["namespace", "store"])
        audit_record(
            actor=actor,
            action=AuditEvent.Action.INDEX_BUILD,
            target_type="index_version",
            target_ids=[version.name],
            details={"model": made.model, "dim": made.dim, "store": version.store},
        )
    return version, False


def index_version_build(*, version: VectorIndex, batch_size: int = 64) -> Iterator[tuple[int, int]]:
    """Fill a building version from the indexed memories after its cursor, a batch at a time
    (yields how many memories each batch did, and how many the build has in all), then with the
    memories indexed since the build started (the double write covers them, unless a worker read
    the versions just before), and mark it ready. Raises BackendError when a batch could not be
    written: run it again."""
    parts = parts_for(**{field: getattr(version, field) for field in PART_FIELDS})
    indexed = Memory.objects.filter(status=Memory.Status.INDEXED)
    total = version.memories_done + indexed.filter(id__gt=version.cursor).count()
    VectorIndex.objects.filter(id=version.id).update(memories_total=total)
    while ids := list(indexed.filter(id__gt=version.cursor).order_by("id").values_list("id", flat=True)[:batch_size]):
        _write(parts, ids)
        version.cursor = ids[-1]
        kept = VectorIndex.objects.filter(id=version.id, state=State.BUILDING).update(
            cursor=ids[-1], memories_done=F("memories_done") + len(ids)
        )
        if not kept:
            raise Conflict(f"index version {version.name} was dropped while it was built", code="no_index_version")
        yield len(ids), total
    since = list(
        indexed.filter(id__lte=version.cursor, updated_at__gte=version.started_at).values_list("id", flat=True)
    )
    for start in range(0, len(since), batch_size):
        _write(parts, since[start : start + batch_size])
    VectorIndex.objects.filter(id=version.id, state=State.BUILDING).update(state=State.READY, built_at=timezone.now())


def _write(parts: IndexParts, ids: list[int]) -> None:
    memories = list(Memory.objects.filter(id__in=ids, status=Memory.Status.INDEXED).order_by("id"))
    failed = memory_vectors_write_version(memories=memories, parts=parts)
    if failed:
        memory_id, exc = next(iter(failed.items()))
        raise BackendError(f"{len(failed)} memories not written (memory {memory_id}: {exc})", permanent=exc.permanent)


def index_version_activate(*, name: str | None = None, previous: bool = False, actor: Actor) -> VectorIndex:
    """Make a built version the one searches read (`previous`: the one retired last), in one
    transaction; the version it replaces is retired, and kept up to date for a rollback."""
    index_version_adopt_live()
    with transaction.atomic():
        versions = list(VectorIndex.objects.select_for_update().exclude(embedder="").order_by("id"))
        if previous:
            retired = [v for v in versions if v.state == State.RETIRED and v.retired_at]
            if not retired:
                raise Conflict("no version was active before this one", code="no_previous_index_version")
            target = max(retired, key=lambda v: v.retired_at)
        else:
            target = next((v for v in versions if v.name == name), None) or index_version_get(name=name or "")
        if target.state == State.BUILDING:
            raise Conflict(
                f"index version {target.name} is still being built "
                f"({target.memories_done} of {target.memories_total}): run index_build to finish it",
                code="index_version_building",
            )
        current = next((v for v in versions if v.state == State.ACTIVE), None)
        if current is not None and current.id == target.id:
            return target
        now = timezone.now()
        if current is not None:
            VectorIndex.objects.filter(id=current.id).update(state=State.RETIRED, retired_at=now)
        VectorIndex.objects.filter(id=target.id).update(state=State.ACTIVE, activated_at=now)
        audit_record(
            actor=actor,
            action=AuditEvent.Action.INDEX_ACTIVATE,
            target_type="index_version",
            target_ids=[target.name],
            details={"previous": current.name if current else "", "model": target.model, "dim": target.dim},
        )
    forget()
    target.refresh_from_db()
    return target


def index_version_drop(*, name: str, actor: Actor) -> None:
    """Remove a version that is not active: its vectors, then its record (a build under way
    stops at its next batch)."""
    version = index_version_get(name=name)
    if version.state == State.ACTIVE:
        raise Conflict(f"index version {name} is active: activate another first", code="index_version_active")
    store = parts_for(**{field: getattr(version, field) for field in PART_FIELDS}).store
    with transaction.atomic():
        locked = VectorIndex.objects.select_for_update().get(id=version.id)
        if locked.state == State.ACTIVE:
            raise Conflict(f"index version {name} is active: activate another first", code="index_version_active")
        locked.delete()
        audit_record(
            actor=actor,
            action=AuditEvent.Action.INDEX_DROP,
            target_type="index_version",
            target_ids=[name],
            details={"model": version.model, "dim": version.dim, "store": version.store},
        )
    store.clear()
