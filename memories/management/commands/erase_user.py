from django.core.management.base import BaseCommand, CommandError

from memories.services import user_erase
from omi_memory.actors import Actor


class Command(BaseCommand):
    help = "Delete every memory of one user and remove all of their vectors from the vector store."

    def add_arguments(self, parser):
        parser.add_argument("uid")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, uid: str, yes: bool, **options):
        if not yes and input(f"Erase every memory and vector of {uid!r}? [y/N] ").strip().lower() != "y":
            raise CommandError("nothing erased")
        memories, vectors = user_erase(uid=uid, actor=Actor.command())
        self.stdout.write(self.style.SUCCESS(f"{uid}: {memories} memories deleted, {vectors} vectors removed"))
