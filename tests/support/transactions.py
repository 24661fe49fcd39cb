"""Transactions in tests that run inside a transaction that is rolled back (pytest-django's `db`).

Nothing commits there, so what the code leaves to `transaction.on_commit` (the pipeline's tasks,
which run in-process without Redis; removing a deleted memory's vectors; the duplicate check)
would never run. `committed()` is pytest-django's `django_capture_on_commit_callbacks(execute=True)`
(Django's `TestCase.captureOnCommitCallbacks`): the callbacks registered in the block, and those
they register, run when the block ends, as they would after a real commit. `CommittingClient`
ends each request so; tests that call a service that commits wrap the call in it.

Rows shared by several tests: `shared_rows()` opens a transaction around the tests of a class or
module, in which a fixture of that scope makes its rows once (memories through the pipeline cost
about a tenth of a second each). Each test's own transaction nests inside it, so whatever a test
changes is still rolled back after it, the shared rows included; the shared rows are rolled back
when the scope ends. Only for tests on `db`: a `transactional_db` test would flush the tables.
"""

from contextlib import contextmanager

from django.db import transaction
from django.test import Client, TestCase


def committed():
    """Run what the block leaves to `on_commit` when it ends (see the module's docstring)."""
    return TestCase.captureOnCommitCallbacks(execute=True)


class CommittingClient(Client):
    """A test client whose requests end with what the view left to run on commit done, as in
    production, where the request's own transaction commits before the answer is read."""

    def request(self, **request):
        with committed():
            return super().request(**request)


@contextmanager
def shared_rows(django_db_blocker):
    """A transaction for the rows a class- or module-scoped fixture makes for its tests."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)
