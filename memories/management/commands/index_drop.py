"""Remove an index version that is not active: its vectors and its record."""

from django.core.management.base import BaseCommand, CommandError

from memories.index_versions import index_version_drop
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError, BackendError


class Command(BaseCommand):
    help = "Remove an index version (its namespace's vectors, then its record); the active one is refused."

    def add_arguments(self, parser):
        parser.add_argument("version", help="e.g. v1")

    def handle(self, *args, version: str, **options):
        try:
            index_version_drop(name=version, actor=Actor.command())
        except (ApplicationError, BackendError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{version} dropped"))
