"""Import memories from a JSON Lines file, through the batched pipeline, with a progress bar."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.models import Memory, Source
from memories.processing import memory_process_now
from memories.services import (
    memory_build,
    memory_create_many,
    parse_time,
)
from omi_memory.errors import ApplicationError, ValidationFailed


class Command(BaseCommand):
    help = (
        "Import memories from a JSONL file: one object per line with `uid`, `transcript`, and optionally "
        "`memory_id` (kept as external_id: a line already imported is skipped), `created_at`, `source`, "
        "`language`, `started_at`, `finished_at`. Memories are processed in batches: in this process, "
        "or with --enqueue by the Celery workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--enqueue", action="store_true", help="hand the batches to the workers")

    def handle(self, *args, file: Path, batch_size: int, enqueue: bool, **options):
        if not file.exists():
            raise CommandError(f"no such file: {file}")
        if not 1 <= batch_size <= 1000:
            raise CommandError("--batch-size must be between 1 and 1000")
        items, invalid, remapped = [], 0, 0
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item, source_remapped = _item(json.loads(line))
                memory_build(**item)
            except ValidationFailed as exc:
                invalid += 1
                self.stderr.write(f"line {number}: skipped: {exc.message}")
                continue
            except (ValueError, KeyError, TypeError) as exc:
                invalid += 1
                self.stderr.write(f"line {number}: skipped: {type(exc).__name__}: {exc}")
                continue
            remapped += source_remapped
            items.append(item)

        counts = {"invalid": invalid, "already there": 0, "indexed": 0, "failed": 0, "queued": 0}
        with tqdm(total=len(items), desc=f"importing {file.name}", unit="memory") as bar:
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                self._import(batch, counts, enqueue)
                bar.update(len(batch))
        self.stdout.write(self.style.SUCCESS("done: " + ", ".join(f"{n} {what}" for what, n in counts.items() if n)))
        if remapped:
            self.stdout.write(f"{remapped} memories had a source Omi does not know: stored as external_integration")
        if counts["failed"]:
            self.stdout.write(self.style.WARNING("failed memories keep their reason; reprocess them to retry"))

    def _import(self, batch: list[dict], counts: dict, enqueue: bool) -> None:
        existing = set(
            Memory.objects.filter(
                uid__in={i["uid"] for i in batch}, external_id__in={i["external_id"] for i in batch}
            ).values_list("uid", "external_id")
        )
        new = [i for i in batch if not i["external_id"] or (i["uid"], i["external_id"]) not in existing]
        counts["already there"] += len(batch) - len(new)
        if not new:
            return
        try:
            memories = memory_create_many(items=new, enqueue=enqueue)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.details or ''}") from exc
        if enqueue:
            counts["queued"] += len(memories)
            return
        for outcome in memory_process_now(memory_ids=[m.id for m in memories]).values():
            counts["indexed" if outcome == "indexed" else "failed"] += 1


def _item(row: dict) -> tuple[dict, bool]:
    """The line as memory fields, and whether its source had to be replaced."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    source = row.get("source") or Source.OMI
    return {
        "uid": row["uid"],
        "transcript": row["transcript"],
        "external_id": str(row.get("memory_id") or ""),
        "source": source if source in Source.values else Source.EXTERNAL_INTEGRATION,
        "language": row.get("language") or "en",
        "created_at": parse_time(row.get("created_at")),
        "started_at": parse_time(row.get("started_at")),
        "finished_at": parse_time(row.get("finished_at")),
    }, source not in Source.values
