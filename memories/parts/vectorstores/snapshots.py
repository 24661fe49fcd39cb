"""A heavy user's vectors in the local store kept on disk, for a search to start from in any process
of this host: the float32 vectors (one file, read a few rows at a time), the rows' metadata, and an
HNSW graph over them (usearch, int8) that finds a query's candidates in a millisecond or two, where
scoring every vector takes tens. The database stays the record: a snapshot is made from it
(`LocalVectorStore.snapshot`), is one user's rows at one version, and a process brings it up to
date with the rows written and deleted since (`local.py`).

One directory per database, namespace and user under LOCAL_STORE_DIR; a new snapshot is written
beside the current one and named current by one rename, so a process never reads half of one.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection

FORMAT = 2
WARM_CHUNK = 8 << 20  # bytes read at a time when a snapshot's files are read through
WARM_AFTER = 0.5  # seconds after the first search that a snapshot's files are read through
# The graph: each vector linked to 16 others (32 at the bottom level), 128 candidates looked at when
# one is added. A search looks at as many as it asks for (local.py asks 400 or more): on 320,000
# vectors made of real sentence embeddings that finds the ten best memories of exact search once
# the candidates are scored exactly (docs/benchmarks.md).
CONNECTIVITY = 16
EXPANSION_ADD = 128


@dataclass(eq=False)
class Snapshot:
    """One user's rows at one version: `meta` (the rows' columns as arrays, as `local._UserVectors`
    names them), the graph (`index`, a memory-mapped view; a row's number is its key) and the file
    of float32 vectors, read with `rows`."""

    path: Path
    info: dict  # version, dim, rows, and what the store notes of the rows (its last id, ...)
    meta: dict[str, np.ndarray]
    index: object  # usearch.index.Index
    vectors: int  # an open file descriptor of vectors.f32
    graph_bytes: int  # the graph's file, with its int8 vectors: a view that the page cache shares
    warmed: bool = False  # its files read through (`warm`)

    def __len__(self) -> int:
        return len(self.meta["pks"])

    @property
    def version(self) -> str:
        return self.info["version"]

    @property
    def dim(self) -> int:
        return self.info["dim"]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """These rows' float32 vectors (ascending rows), read from the file: what the page cache holds is
        not this process's memory."""
        size = 4 * self.dim
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        view = memoryview(out).cast("B")
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # consecutive rows: one read
        ends = np.append(starts[1:], len(rows))
        for start, end, row in zip(starts.tolist(), ends.tolist(), rows[starts].tolist()):
            if os.preadv(self.vectors, [view[start * size : end * size]], row * size) != (end - start) * size:
                raise OSError(f"{self.path}: short read")
        return out

    def warm(self) -> None:
        """Read the float32 vectors and the graph through, once, in a thread of their own, so that the
        page cache holds them: a search on pages that are not in it reads the disk row by row (30 to
        40 ms at 20,000 memories instead of 9 to 13, for dozens of searches; bench/cold_snapshot.py).
        The kernel's read-ahead advice (POSIX_FADV_WILLNEED) did not bring them in here."""
        if self.warmed:
            return
        self.warmed = True
        files = [self.path / "vectors.f32", self.path / "hnsw.usearch"]
        threading.Thread(target=_read_through, args=(files,), name="snapshot-warm", daemon=True).start()

    def __del__(self):  # the last copy of the user's vectors that holds it is gone
        with contextlib.suppress(OSError):
            os.close(self.vectors)


def _read_through(files: list[Path]) -> None:
    time.sleep(WARM_AFTER)  # the search that opened the snapshot answers first, its reads unhindered
    buffer = bytearray(WARM_CHUNK)
    for path in files:
        with contextlib.suppress(OSError), open(path, "rb", buffering=0) as file:
            while file.readinto(buffer):
                pass


def database_dir() -> Path:
    """This database's directory."""
    db = connection.settings_dict
    place = f"{connection.vendor}|{db.get('HOST')}|{db.get('PORT')}|{db['NAME']}"
    return Path(settings.LOCAL_STORE_DIR) / hashlib.sha256(place.encode()).hexdigest()[:16]


def namespace_dir(namespace: str) -> Path:
    return database_dir() / hashlib.sha256(namespace.encode()).hexdigest()[:16]


def user_dir(namespace: str, uid: str) -> Path:
    """This database's, namespace's and user's directory (names hashed: a uid is any text)."""
    return namespace_dir(namespace) / hashlib.sha256(uid.encode()).hexdigest()[:32]


def load(namespace: str, uid: str) -> Snapshot | None:
    """The user's current snapshot, or None (none, another format, or unreadable: made again)."""
    from usearch.index import Index

    directory = user_dir(namespace, uid)
    try:
        path = directory / (directory / "current").read_text().strip()
        info = json.loads((path / "info.json").read_text())
        if info.get("format") != FORMAT:
            return None
        with np.load(path / "meta.npz", allow_pickle=False) as stored:
            meta = {name: stored[name] for name in stored.files}
        index = Index.restore(str(path / "hnsw.usearch"), view=True)
        if index is None or not len(index) == len(meta["pks"]) == info["rows"]:
            return None
        graph_bytes = (path / "hnsw.usearch").stat().st_size
        vectors = os.open(path / "vectors.f32", os.O_RDONLY)
    except (OSError, ValueError, KeyError, RuntimeError):
        return None
    return Snapshot(path, info, meta, index, vectors, graph_bytes)


def write(
    namespace: str,
    uid: str,
    *,
    version: str,
    dim: int,
    blocks: Iterator[np.ndarray],
    meta: Callable[[], tuple[dict[str, np.ndarray], dict]],
    progress=None,
) -> Path | None:
    """A new snapshot of rows (`blocks`: their float32 vectors in order; `meta()`: their columns and
    what to note of them, once the blocks are read), made current: its directory; None when another
    process is making one of this user now (the first one wins, the other gives up)."""
    from usearch.index import Index

    directory = user_dir(namespace, uid)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        path = directory / f"g-{uuid.uuid4().hex}"
        path.mkdir()
        try:
            index = Index(
                ndim=dim,
                metric="ip",  # unit vectors: cosine
                dtype="i8",
                connectivity=CONNECTIVITY,
                expansion_add=EXPANSION_ADD,
            )
            rows = 0
            with open(path / "vectors.f32", "wb") as out:
                for block in blocks:
                    out.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
                    index.add(np.arange(rows, rows + len(block)), block, threads=settings.TORCH_THREADS)
                    rows += len(block)
                    if progress:
                        progress(len(block))
            columns, noted = meta()
            if rows != len(columns["pks"]):
                raise ValueError(f"{rows} vectors for {len(columns['pks'])} rows")
            index.save(str(path / "hnsw.usearch"))
            np.savez(path / "meta.npz", **columns)
            info = {**noted, "format": FORMAT, "version": version, "dim": dim, "rows": rows}
            (path / "info.json").write_text(json.dumps(info))
            (directory / "current.new").write_text(path.name)
            os.replace(directory / "current.new", directory / "current")
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        for old in directory.glob("g-*"):  # a process reading one keeps its open files
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
    return path


def remove(namespace: str, uid: str | None = None) -> None:
    """A user's snapshots (None: the namespace's), as their vectors leave the database."""
    shutil.rmtree(user_dir(namespace, uid) if uid is not None else namespace_dir(namespace), ignore_errors=True)
