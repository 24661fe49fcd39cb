"""Build and save the BM25 snapshots of users now, rather than at their first hybrid search."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from search import lexical


class Command(BaseCommand):
    help = (
        "Build the BM25 index of each user with more than --more-than searchable memories (default: as "
        "many as a search would save a snapshot for) that has no snapshot of this version's layout (every "
        "one with --rebuild), or of --uid, and save it as their snapshot (LexicalSnapshot): a process then "
        "loads it at the user's first hybrid search instead of building it there (seconds for a heavy "
        "user). Run it after an upgrade that changes the layout, or after an import."
    )

    def add_arguments(self, parser):
        parser.add_argument("--uid", help="only this user, whatever their number of memories")
        parser.add_argument("--more-than", type=int, default=lexical.SNAPSHOT_LAG, help="memories")
        parser.add_argument("--rebuild", action="store_true", help="also the users that have one")

    def handle(self, *args, uid: str | None, more_than: int, rebuild: bool, **options):
        users = [uid] if uid else list(lexical.snapshot_users(more_than=more_than, missing=not rebuild))
        saved = 0
        for user in tqdm(users, desc="BM25 snapshots", unit="user"):
            saved += lexical.snapshot_build(user)
        self.stdout.write(self.style.SUCCESS(f"{saved} BM25 snapshot(s) saved, of {len(users)} user(s)"))
