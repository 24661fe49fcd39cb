"""`manage.py sweep`, which stands in for Celery beat without Redis (`make run` runs it every
minute): it runs every app's sweeper, so a duplicate scan whose message was lost is done too."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from search import tasks
from search.analysis.duplicates import duplicate_scan_enqueue
from search.models import DuplicateScan
from tests.support.actors import COMMAND

# The command closes a connection left out of autocommit, as a test's transaction is: real commits.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_sweep_command_runs_every_apps_sweeper(settings, monkeypatch):
    monkeypatch.setattr(tasks.run_duplicate_scan, "apply_async", lambda *args, **kwargs: None)  # sent, then lost
    scan = duplicate_scan_enqueue(uid="alice", actor=COMMAND)
    monkeypatch.undo()
    queue_lease = timedelta(seconds=settings.PIPELINE_QUEUE_LEASE_SECONDS + 1)
    DuplicateScan.objects.filter(id=scan.id).update(updated_at=timezone.now() - queue_lease)
    out = io.StringIO()

    call_command("sweep", stdout=out)

    assert out.getvalue().splitlines() == [
        "memories: 0 sent to the pipeline again, 0 deleted whose vectors are to be removed, 0 failed "
        "(worker lost too often)",
        "cluster runs and duplicate scans: 1 sent, 0 failed",
        "webhook deliveries: 0 sent",
    ]
    assert DuplicateScan.objects.get(id=scan.id).status == "done"  # in-process: run by the sweep
