from django.core.management.base import BaseCommand

from omi_memory.actors import Actor
from search.services import profile_deactivate
from search.strategies import STRATEGIES


class Command(BaseCommand):
    help = "A strategy's searches use its default parameters again; recorded in the audit trail."

    def add_arguments(self, parser):
        parser.add_argument("strategy", choices=STRATEGIES)

    def handle(self, *args, strategy: str, **options):
        profile = profile_deactivate(strategy=strategy, actor=Actor.command())
        was = f"profile {profile.name} deactivated" if profile else "no profile was active"
        self.stdout.write(self.style.SUCCESS(f"{was}: {strategy} searches use the defaults"))
