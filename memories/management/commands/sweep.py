import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from memories.services import pipeline_sweep


class Command(BaseCommand):
    help = (
        "Send again the work whose lease has passed: memories queued or processing that no message or "
        "worker has any more, deleted memories whose vectors are still stored. With Redis, Celery beat "
        "runs this every PIPELINE_SWEEP_SECONDS; without it (tasks in-process) `--every` keeps it going."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, metavar="SECONDS", help="sweep again every SECONDS, until stopped")

    def handle(self, *args, every: float | None, **options):
        while True:
            close_old_connections()  # a connection the database dropped is not reused
            try:
                done = pipeline_sweep()
            except DatabaseError as exc:
                if not every:
                    raise
                self.stderr.write(f"sweep failed, trying again in {every:g} s: {exc}")
            else:
                if done.queued or done.deleted or done.failed or not every:
                    self.stdout.write(
                        f"{len(done.queued)} memories sent to the pipeline again, {len(done.deleted)} deleted "
                        f"ones to have their vectors removed, {len(done.failed)} failed (worker lost too often)"
                    )
            if not every:
                return
            time.sleep(every)
