"""Transactions for tests that run inside a transaction that is rolled back (pytest-django's `db`).

Commits as in production. Under `db` a test runs inside atomic blocks opened by the test case
(marked `_from_testcase`), which are rolled back when it ends: nothing commits, so
`transaction.on_commit` callbacks would never run. In production (no ATOMIC_REQUESTS) a callback
runs when the outermost atomic block of the code commits, or at once when it is registered outside
any block; the pipeline relies on it (a memory is processed in-process, before the API answers).

`commits_as_in_production()` does the same inside a test: the test case's own blocks count as
"no block". A callback registered inside the code's blocks runs when the outermost of them exits
without error; a callback registered in a block that is rolled back is dropped (Django already
drops it); callbacks registered by callbacks follow the same rules, as they do in production.
Under `transactional_db` there is no test case block, and Django's own behaviour applies unchanged.

Rows shared by several tests. `shared_rows()` opens a transaction around the tests of a class or
module, in which a fixture of that scope makes its rows once (memories through the pipeline cost
about a tenth of a second each). Each test's own transaction nests inside it, so whatever a test
changes is still rolled back after it, the shared rows included; the shared rows are rolled back
when the scope ends. Only for tests on `db`: a `transactional_db` test would flush the tables.
"""

import logging
from contextlib import contextmanager

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)


def _outside_the_codes_blocks(connection) -> bool:
    """In the test case's transaction, and in no atomic block of the code under test."""
    blocks = connection.atomic_blocks
    return bool(blocks) and all(block._from_testcase for block in blocks)


def _run(callbacks) -> None:
    for _, func, robust in callbacks:
        if not robust:
            func()
            continue
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - a robust callback's error is logged, as Django does
            logger.error(
                "Error calling %s in on_commit() (%s).", getattr(func, "__qualname__", func), exc, exc_info=True
            )


@contextmanager
def commits_as_in_production():
    """Run `on_commit` callbacks where a real commit would, in tests that run in a transaction."""
    original_on_commit = BaseDatabaseWrapper.on_commit
    original_exit = transaction.Atomic.__exit__

    def on_commit(self, func, robust=False):
        if _outside_the_codes_blocks(self):
            _run([(None, func, robust)])  # autocommit in production: at once
        else:
            original_on_commit(self, func, robust)

    def exit_block(self, exc_type, exc_value, traceback):
        connection = transaction.get_connection(self.using)
        commits = exc_type is None and not connection.needs_rollback  # as Django decides it
        original_exit(self, exc_type, exc_value, traceback)
        if not self._from_testcase and _outside_the_codes_blocks(connection):
            # The code's outermost block has just ended: what waited for it runs now if it
            # committed, and is forgotten if it rolled back.
            pending, connection.run_on_commit = connection.run_on_commit, []
            if commits:
                _run(pending)

    BaseDatabaseWrapper.on_commit = on_commit
    transaction.Atomic.__exit__ = exit_block
    try:
        yield
    finally:
        BaseDatabaseWrapper.on_commit = original_on_commit
        transaction.Atomic.__exit__ = original_exit


@contextmanager
def shared_rows(django_db_blocker):
    """A transaction for the rows a class- or module-scoped fixture makes for its tests."""
    with django_db_blocker.unblock():
        block = transaction.atomic()
        block._from_testcase = True  # like the test case's own blocks: the code commits inside it
        block.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            block.__exit__(None, None, None)
