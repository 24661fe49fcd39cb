from django.core.management.base import BaseCommand

from search.models import ParameterProfile
from search.strategies import params_in_order


class Command(BaseCommand):
    help = "Parameter profiles, newest first: name, strategy, whether active, held-out nDCG@10 before and after tuning."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", help="only this strategy's")

    def handle(self, *args, strategy: str | None, **options):
        profiles = ParameterProfile.objects.all()
        if strategy:
            profiles = profiles.filter(strategy=strategy)
        for profile in profiles:
            tuned = profile.tuned
            fitted = (
                f"nDCG@10 {tuned['before']['ndcg@10']:.4f} -> {tuned['after']['ndcg@10']:.4f} held out, "
                f"{tuned['judged_queries']} judged + {tuned['labelled_queries']} labelled queries"
                if tuned
                else ""
            )
            state = "active" if profile.active else "inactive"
            self.stdout.write(
                f"{profile.name}  {profile.strategy}  {state}  {profile.created_at:%Y-%m-%d %H:%M}  {fitted}"
            )
            self.stdout.write(
                "    "
                + ", ".join(f"{name}={value:g}" for name, value in params_in_order(profile.strategy, profile.params))
            )
