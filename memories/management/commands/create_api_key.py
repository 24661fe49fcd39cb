from django.core.management.base import BaseCommand, CommandError

from memories.services import api_key_create
from omi_memory.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API key and print it (alone, on the last line). Only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--uid", default="", help="scope the key to one user (default: all users)")

    def handle(self, *args, name: str, uid: str, **options):
        try:
            key, raw = api_key_create(name=name, uid=uid)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        scope = f"uid {key.uid}" if key.uid else "all users"
        self.stderr.write(f"API key {key.name!r} ({scope}); it is shown once, store it now:")
        self.stdout.write(raw)
