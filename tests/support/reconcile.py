"""For tests that end with the database and the vector store agreeing."""

from memories.reconcile import reconcile


def assert_reconciled(*, uid: str | None = None) -> None:
    """Reconcile (without repairing) and fail with what was found, if anything: no vector
    missing from the store, no orphan in it, no metadata that differs."""
    report = reconcile(uid=uid)
    found = "\n".join(str(finding) for finding in report.findings)
    assert not report.found, f"{report.summary()}\n{found}"
