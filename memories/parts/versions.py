"""Which index version a process reads and writes: its embedder and its store.

`get_embedder()` and `get_vector_store()` answer with the parts of, in order: the version pinned
for the block being run (`using_version`: one search, one batch of the pipeline, so that nothing
mixes two versions halfway through a switch), the active version (read from the database, each
process trusting its copy for INDEX_VERSION_TTL seconds), or, before any version was activated,
the settings (EMBEDDER, VECTOR_STORE, VECTOR_NAMESPACE).

A switch (`index_activate`) is one transaction: every process reads the new version at its next
search once its copy is older than INDEX_VERSION_TTL, and both versions hold every memory
meanwhile (double write), so a search answers fully from either.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from omi_memory import recently
from omi_memory.recently import recently_read

from .embedders.base import Embedder
from .vectorstores.base import VectorStore


@dataclass(frozen=True)
class IndexParts:
    """One index version's parts; `version` is its name ("" when the settings decide).
    `isolated`: a store of its own that no other version mirrors (the evaluation's)."""

    version: str
    embedder: Embedder
    store: VectorStore
    isolated: bool = False


_pinned: ContextVar[IndexParts | None] = ContextVar("index_parts", default=None)
_lock = threading.Lock()
_parts: dict[tuple, object] = {}  # embedders and stores of versions, built once per process
_warmed: set[int] = set()  # versions whose parts this process has warmed up
PART_FIELDS = ("id", "embedder", "dimensions", "vector_store", "host", "namespace")
ACTIVE_VERSION = ("active index version",)  # its key in omi_memory.recently
logger = logging.getLogger(__name__)


def pinned() -> IndexParts | None:
    return _pinned.get()


@contextmanager
def using_version(parts: IndexParts | None) -> Iterator[IndexParts | None]:
    """Run the block with these parts (None: whatever is current), whatever is activated meanwhile."""
    token = _pinned.set(parts or current_parts())
    try:
        yield _pinned.get()
    finally:
        _pinned.reset(token)


def active_version_fields() -> dict | None:
    """The active managed version's row (as a dict), or None: the settings decide. Cached per
    process for INDEX_VERSION_TTL seconds (`omi_memory.recently`)."""
    return recently_read(ACTIVE_VERSION, _read_active_version)


def _read_active_version() -> dict | None:
    from django.db import DatabaseError

    from memories.models import VectorIndex

    try:
        rows = list(
            VectorIndex.objects.filter(state__in=[VectorIndex.State.ACTIVE, VectorIndex.State.READY])
            .exclude(embedder="")
            .values("state", *PART_FIELDS)
        )
    except DatabaseError:  # no table yet (before migrate): the settings decide
        rows = []
    fields = next(({f: row[f] for f in PART_FIELDS} for row in rows if row["state"] == "active"), None)
    _warm([{f: row[f] for f in PART_FIELDS} for row in rows if row["state"] == "ready"])
    return fields


def _warm(versions: list[dict]) -> None:
    """Load the parts of versions built and not yet active, once per process, in the background:
    the first search after a switch does not pay for a model or an SDK to load."""
    for fields in versions:
        with _lock:
            if fields["id"] in _warmed:
                continue
            _warmed.add(fields["id"])
        embedder = parts_for(**fields).embedder
        threading.Thread(target=_quietly, args=(embedder.warm_up,), daemon=True, name=f"warm v{fields['id']}").start()


def _quietly(function) -> None:
    try:
        function()
    except Exception:  # noqa: BLE001 - a warm-up is an optimisation: the first search will say what fails
        logger.warning("could not warm an index version up", exc_info=True)


def current_parts() -> IndexParts:
    """The pinned parts, else the active version's, else the configured ones."""
    parts = _pinned.get()
    if parts is not None:
        return parts
    fields = active_version_fields()
    if fields is None:
        from .embedders import configured_embedder
        from .vectorstores import configured_vector_store

        return IndexParts("", configured_embedder(), configured_vector_store())
    return parts_for(**fields)


def parts_for(
    *, id: int, embedder: str, dimensions: int | None, vector_store: str, host: str, namespace: str
) -> IndexParts:
    """The parts of a managed version (from its row's fields), built once per process."""
    return IndexParts(
        f"v{id}",
        _part(("embedder", embedder, dimensions), lambda: make_embedder(embedder, dimensions)),
        _part(("store", vector_store, host, namespace), lambda: make_store(vector_store, host, namespace)),
    )


def make_embedder(name: str, dimensions: int | None) -> Embedder:
    from .embedders import EMBEDDERS

    cls = import_string(EMBEDDERS.get(name, name))
    return cls(dimensions=dimensions) if dimensions else cls()


def make_store(name: str, host: str, namespace: str) -> VectorStore:
    from .vectorstores import VECTOR_STORES

    cls = import_string(VECTOR_STORES.get(name, name))
    return cls(namespace=namespace, host=host) if host else cls(namespace=namespace)


def _part(key: tuple, make):
    part = _parts.get(key)
    if part is None:
        with _lock:
            part = _parts.get(key)
            if part is None:
                part = _parts[key] = make()
    return part


def forget(**kwargs) -> None:
    """Read the active version again at the next use (after an activation in this process)."""
    recently.forget(*ACTIVE_VERSION)


@receiver(setting_changed)
def _forget_parts(**kwargs) -> None:
    """Settings changed (in tests): versions' parts are built again."""
    forget()
    with _lock:
        _parts.clear()
        _warmed.clear()


def other_versions(parts: IndexParts) -> list[IndexParts]:
    """Every managed version but the one of `parts`: the pipeline writes to them too (double
    write). Read from the database each time, so a build that just started is written to."""
    from memories.models import VectorIndex

    if parts.isolated:
        return []
    rows = VectorIndex.objects.exclude(embedder="").values(*PART_FIELDS)
    found = [parts_for(**fields) for fields in rows]
    return [other for other in found if other.store.identity != parts.store.identity]
