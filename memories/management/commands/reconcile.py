"""Compare the database's expected vectors with the vector store; with --repair, put it right
(memories/reconcile.py)."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.models import ReconcileRun
from memories.reconcile import KINDS, reconcile_run_create, reconcile_run_execute
from omi_memory.actors import Actor
from omi_memory.errors import Conflict

UNITS = {"expected": ("indexed memories", "memories"), "listed": ("the store's vectors", "vectors")}


class Command(BaseCommand):
    help = (
        "Compare each indexed memory's vectors, as the database keeps them, with the vector store: vectors "
        "missing from the store, vectors of deleted, failed or unknown memories (orphans), and vectors whose "
        "metadata (uid, memory_id, created_at, category, source, kind) differs. Exits 1 if any is found; "
        "--repair upserts the missing and differing ones again from the stored vectors (nothing is embedded "
        "again) and deletes the orphans. The run is kept and shown on the pipeline page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--uid", help="only this user's memories and vectors")
        parser.add_argument("--repair", action="store_true", help="repair what is found")

    def handle(self, *args, uid: str | None, repair: bool, **options):
        try:
            run = reconcile_run_create(
                uid=uid or "", repair=repair, trigger=ReconcileRun.Trigger.COMMAND, actor=Actor.command()
            )
        except Conflict as exc:
            raise CommandError(exc.message) from exc
        bars: dict[str, tqdm] = {}

        def progress(report, stage: str, advanced: int, total: int | None) -> None:
            if stage not in bars:
                for bar in bars.values():
                    bar.close()
                what, unit = UNITS[stage]
                bars[stage] = tqdm(total=total, desc=f"checking {what}", unit=unit)
            bars[stage].update(advanced)

        try:
            run = reconcile_run_execute(run_id=run.id, progress=progress)
        finally:
            for bar in bars.values():
                bar.close()
        if run.status == ReconcileRun.Status.FAILED:
            raise CommandError(f"reconciliation #{run.id} failed: {run.error}")
        self._report(run)
        if run.repair and run.error:
            raise CommandError(f"some findings could not be repaired:\n{run.error}")
        if run.found and not run.repair:
            raise CommandError(f"{run.found} finding(s): `manage.py reconcile --repair` puts them right")

    def _report(self, run: ReconcileRun) -> None:
        scope = f"uid {run.uid}" if run.uid else "every user"
        self.stdout.write(
            f"reconciliation #{run.id} of {run.store}, {scope}: {run.memories_checked} indexed memories, "
            f"{run.vectors_checked} vectors checked"
        )
        counts = dict(zip(KINDS, (run.missing, run.orphaned, run.mismatched)))
        for kind in KINDS:
            shown = [finding for finding in run.findings if finding["kind"] == kind]
            for finding in shown:
                self.stdout.write(f"  {kind:<8} {finding['vector_id']}  ({finding['uid']}) {finding['detail']}")
            if counts[kind] > len(shown):
                self.stdout.write(f"  ... and {counts[kind] - len(shown)} more {kind}")
        summary = f"{run.missing} missing, {run.orphaned} orphaned, {run.mismatched} with other metadata"
        if run.repair:
            summary += f"; repaired: {run.repaired} upserted again, {run.removed} orphans removed"
        self.stdout.write(self.style.SUCCESS(summary) if not run.found else self.style.WARNING(summary))
