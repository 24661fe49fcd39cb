"""Switch searches to another index version, or back to the previous one."""

from django.core.management.base import BaseCommand, CommandError

from memories.index_versions import index_version_activate
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Make a built index version (see `index_build`) the one searches read and the pipeline writes first, "
        "for every process, without a restart (each follows within INDEX_VERSION_TTL seconds); the version it "
        "replaces is retired and kept up to date, so `--previous` switches back to it."
    )

    def add_arguments(self, parser):
        parser.add_argument("version", nargs="?", help="e.g. v2")
        parser.add_argument("--previous", action="store_true", help="back to the version retired last")

    def handle(self, *args, version: str | None, previous: bool, **options):
        if bool(version) == previous:
            raise CommandError("name a version, or give --previous")
        try:
            active = index_version_activate(name=version, previous=previous, actor=Actor.command())
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{active.name} is active: {active.model} ({active.dim} dims) in {active.store}")
        )
