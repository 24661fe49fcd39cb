from django.core.management.base import BaseCommand, CommandError

from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError
from search.selectors import profile_get
from search.services import profile_activate


class Command(BaseCommand):
    help = (
        "Make a parameter profile the one its strategy's searches use by default (the one active before is "
        "deactivated); recorded in the audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the profile's name (list_profiles)")

    def handle(self, *args, name: str, **options):
        try:
            profile = profile_activate(profile=profile_get(name=name), actor=Actor.command())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"profile {profile.name} is active: {profile.strategy} searches use it"))
