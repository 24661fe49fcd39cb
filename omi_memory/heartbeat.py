"""A heartbeat: while a block of work runs, a thread renews what says a worker is on it (a lease,
a timestamp), so that a sweeper knows the worker is alive however long the work takes."""

import logging
import threading
from collections.abc import Callable

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)


class Heartbeat:
    """Calls `beat` every `every` seconds in a thread of its own (with its own database connection)
    until the block ends, or `beat` returns False (nothing of the work is held any more). A beat
    that fails on the database is logged and tried again at the next, on a new connection."""

    def __init__(self, name: str, every: float, beat: Callable[[], bool]):
        self.name, self.every, self.beat = name, every, beat
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        # Inside a transaction the work's claim is not visible to another connection (and an update
        # from one would wait for this one's row locks): a beat from outside it means nothing.
        if not transaction.get_connection().in_atomic_block:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    if not self.beat():
                        return
                except DatabaseError as exc:
                    logger.warning("%s: could not beat: %s", self.name, exc)
                    connection.close()
        finally:
            connection.close()  # this thread's own
