import json
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from memories.models import ApiKey, Memory
from memories.processing import memory_process_now
from memories.services import api_key_create, api_key_revoke, memory_create_many
from omi_memory.actors import Actor

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "demo_memories.jsonl"
# The demo conversations name dates of spring 2025 ("Monday, March 24th"); `days_ago` counts back
# from this day so that what people say agrees with when they said it.
DEMO_TODAY = datetime(2025, 4, 23, 18, 0, tzinfo=UTC)
ROLES = ("admin", "analyst")
BATCH = 8


class Command(BaseCommand):
    help = (
        "Load the demo memories through the pipeline (with a progress bar), create the demo admin "
        "and a demo API key, and print both. Safe to run again: loaded memories are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEMO_FILE)

    def handle(self, *args, file: Path, **options):
        self._load(file)
        password = self._user("admin", superuser=True)
        analyst_password = self._user("analyst")
        raw_key = self._api_key()
        demo = Memory.objects.filter(external_id__startswith="demo-")
        counts = {status: demo.filter(status=status).count() for status in Memory.Status.values}
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo ready: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)))
        site = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self.stdout.write(f"  dashboard         {site}/  (sign in as below)")
        self.stdout.write(f"  dashboard login   admin / {password}   (admin: may delete, reprocess, merge, run jobs)")
        self.stdout.write(f"  analyst login     analyst / {analyst_password}   (analyst: browse, search, judge)")
        self.stdout.write(f"  API key (all users, header X-API-Key): {raw_key}")
        self.stdout.write(
            f'  try: curl -s -X POST {site}/api/v1/search -H "X-API-Key: {raw_key}" '
            '-H \'Content-Type: application/json\' -d \'{"uid": "alice", "query": "what did the dentist say"}\''
        )

    def _load(self, file: Path) -> None:
        rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        existing = set(Memory.objects.filter(external_id__startswith="demo-").values_list("uid", "external_id"))
        items = []
        for row in rows:
            if (row["uid"], row["external_id"]) in existing:
                continue
            day = DEMO_TODAY - timedelta(days=row["days_ago"])
            started = day.replace(hour=row["hour"], minute=row["minute"], second=0, microsecond=0)
            if started > DEMO_TODAY:
                started -= timedelta(days=1)
            items.append(
                dict(
                    uid=row["uid"],
                    transcript=row["transcript"],
                    source=row["source"],
                    language=row["language"],
                    started_at=started,
                    finished_at=started + timedelta(minutes=row["duration_minutes"]),
                    external_id=row["external_id"],
                )
            )
        if items:
            memory_create_many(items=items, enqueue=False)
        pending = list(
            Memory.objects.filter(external_id__startswith="demo-")
            .exclude(status__in=[Memory.Status.INDEXED, Memory.Status.DELETED])
            .order_by("created_at")
            .values_list("id", flat=True)
        )
        if pending:
            Memory.objects.filter(id__in=pending).update(status=Memory.Status.QUEUED)
        logging.getLogger("memories").setLevel(logging.WARNING)  # the bar says it
        with tqdm(total=len(pending), desc="Indexing demo memories", unit="memory") as bar:
            for start in range(0, len(pending), BATCH):  # a few at a time: one embedding call each
                memory_process_now(memory_ids=pending[start : start + BATCH])
                bar.update(len(pending[start : start + BATCH]))

    def _user(self, role: str, *, superuser: bool = False) -> str:
        """The demo user of one role (named after it), with a new password, returned."""
        for name in ROLES:
            Group.objects.get_or_create(name=name)
        password = secrets.token_urlsafe(9)
        with transaction.atomic():
            user, _ = User.objects.get_or_create(username=role, defaults={"email": f"{role}@example.com"})
            user.is_staff = user.is_superuser = superuser
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=role))
        return password

    def _api_key(self) -> str:
        """A new demo key; the demo keys made before are revoked (and that is recorded)."""
        actor = Actor.command()
        for key in ApiKey.objects.filter(name="demo", revoked_at=None):
            api_key_revoke(key=key, actor=actor)
        return api_key_create(name="demo", actor=actor)[1]
