"""Search logs written after the answer, off the search's hot path.

A search takes its log's id first (`reserve_id`: from ids the process took from the table's
PostgreSQL sequence, RESERVE at a time in one round trip), so the caller gets `search_id` at once; the row is
written by one background thread per process, a few at a time (`bulk_create`). The queue is bounded
(SEARCH_LOG_QUEUE): when it is full the search writes its own log, so logs are never dropped and
memory never grows. The thread keeps its connection while logs keep coming, and lets it go after
IDLE_SECONDS without one (closing it whenever the queue ran dry cost every search of a steady stream
a new PostgreSQL connection, about 2 ms of a 2-core machine's time). On normal shutdown (`atexit`)
the thread writes what is queued and lets its connection go before the process ends. Feedback that
names a search whose log is still on its way waits for it a little (`search_log_get`).

Other databases (SQLite, for development) or SEARCH_LOG_BACKGROUND off: written in the search,
as before.
"""

import atexit
import functools
import logging
import os
import queue
import threading

from django.conf import settings
from django.db import connection, connections

from .models import SearchLog

logger = logging.getLogger(__name__)
BATCH = 200  # rows per insert
RESERVE = 50  # ids taken from the sequence at once
IDLE_SECONDS = 5.0  # a writer with nothing to write this long closes its connection
_LET_GO = object()  # queued by `flush`: the writer closes its connection when it gets there


def in_background() -> bool:
    return settings.SEARCH_LOG_BACKGROUND and connection.vendor == "postgresql"


@functools.cache
def _sequence(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [SearchLog._meta.db_table])
        return cursor.fetchone()[0]


class _Ids:
    """Ids taken from the sequence RESERVE at a time (one round trip), handed out one by one; a
    forked process takes its own (never its parent's)."""

    def __init__(self):
        self._ids: list[int] = []
        self._pid = 0
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            if self._pid != os.getpid():
                self._ids, self._pid = [], os.getpid()
            if not self._ids:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT nextval(%s) FROM generate_series(1, %s)", [_sequence(connection.alias), RESERVE]
                    )
                    self._ids = sorted((row[0] for row in cursor.fetchall()), reverse=True)
            return self._ids.pop()


_ids = _Ids()


def reserve_id() -> int:
    """An id for a search log that no other process will use (PostgreSQL: from the table's sequence)."""
    return _ids.take()


def reserved(search_id: int) -> bool:
    """Whether a search may have taken this id and not written its log yet."""
    if not in_background():
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value FROM {_sequence(connection.alias)}")  # noqa: S608 - the sequence's own name
        return search_id <= cursor.fetchone()[0]


class SearchLogWriter:
    """One thread per process that writes queued logs (started on first use, again after a fork)."""

    def __init__(self):
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, log: SearchLog) -> None:
        """Write `log` (its id set) soon; at once, here, when the queue is full."""
        try:
            self._started().put_nowait(log)
        except queue.Full:
            SearchLog.objects.bulk_create([log])

    def flush(self) -> None:
        """Return once every log queued so far in this process is written and the writer holds no
        connection."""
        if self._queue is not None and self._pid == os.getpid():
            self._queue.put(_LET_GO)
            self._queue.join()

    def _started(self) -> queue.Queue:
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._queue = queue.Queue(maxsize=settings.SEARCH_LOG_QUEUE)
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="search-log", daemon=True)
                self._pid = os.getpid()
                self._thread.start()
            return self._queue

    def _run(self, pending: queue.Queue) -> None:
        while True:
            try:
                batch = [pending.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                connection.close()  # idle: no connection held
                batch = [pending.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            logs = [log for log in batch if log is not _LET_GO]
            try:
                if logs:
                    self._write(logs)
                if len(logs) < len(batch):
                    connection.close()
            finally:
                for _ in batch:
                    pending.task_done()

    @staticmethod
    def _write(batch: list[SearchLog]) -> None:
        """All in one insert; if that fails (a broken connection, a row the database refuses), one
        by one on a new connection, so one bad row costs only itself (logged)."""
        try:
            SearchLog.objects.bulk_create(batch)
            return
        except Exception:  # noqa: BLE001 - the thread must live on
            connection.close()
        for log in batch:
            try:
                SearchLog.objects.bulk_create([log])
            except Exception:  # noqa: BLE001
                connection.close()
                logger.exception("could not write the log of search %s", log.id)


def search_log_write(log: SearchLog) -> int:
    """Log a search; returns its id at once, the row written by the background writer (or here)."""
    if not in_background():
        log.save()
        return log.id
    log.id = reserve_id()
    writer.submit(log)
    return log.id


writer = SearchLogWriter()
atexit.register(writer.flush)
