"""Make the local store's snapshots on disk of its heavy users now, rather than after their first search."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.parts.vectorstores import get_vector_store, snapshots


class Command(BaseCommand):
    help = (
        "Make the snapshot on disk (LOCAL_STORE_DIR) of each user of the local store with "
        "LOCAL_STORE_SNAPSHOT_ROWS vectors or more (or of --uid) that has none (every one with --rebuild): "
        "a process then starts that user's searches from it, through its graph. Searches make missing "
        "ones in the background; this makes them ahead, e.g. after an import."
    )

    def add_arguments(self, parser):
        parser.add_argument("--uid", help="only this user, whatever their number of vectors")
        parser.add_argument("--rebuild", action="store_true", help="also the users that have one")

    def handle(self, *args, uid: str | None, rebuild: bool, **options):
        store = get_vector_store()
        if store.name != "local":
            raise CommandError(f"the store in use is {store.name}: snapshots are the local store's")
        if not settings.LOCAL_STORE_SNAPSHOT_ROWS and not uid:
            raise CommandError("LOCAL_STORE_SNAPSHOT_ROWS is 0: snapshots are off")
        users = {uid: store.count(uid)} if uid else store.heavy_users(settings.LOCAL_STORE_SNAPSHOT_ROWS)
        made = 0
        for user, rows in users.items():
            if not rebuild and snapshots.load(store.namespace, user) is not None:
                continue
            with tqdm(total=rows, desc=f"snapshot of {user}", unit="vector") as bar:
                made += store.snapshot(user, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"{made} snapshot(s) made, of {len(users)} user(s)"))
