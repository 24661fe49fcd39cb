import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from omi_memory.sweeps import sweep_all


class Command(BaseCommand):
    help = (
        "Send again the work whose lease has passed, in every app: memories queued or processing that no "
        "message or worker has any more, deleted memories whose vectors are still stored, cluster runs and "
        "duplicate scans, webhook deliveries. With Redis, Celery beat sends each app's sweep every "
        "PIPELINE_SWEEP_SECONDS; without it (tasks in-process) `--every` keeps this going."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, metavar="SECONDS", help="sweep again every SECONDS, until stopped")

    def handle(self, *args, every: float | None, **options):
        while True:
            close_old_connections()  # a connection the database dropped is not reused
            try:
                reports = sweep_all()
            except DatabaseError as exc:
                if not every:
                    raise
                self.stderr.write(f"sweep failed, trying again in {every:g} s: {exc}")
            else:
                for done, line in reports:
                    if done or not every:
                        self.stdout.write(line)
            if not every:
                return
            time.sleep(every)
