"""Find (and with --fix repair) rows stored before the input bounds held: dates out of range, NUL
characters and lone surrogates in text (omi_memory/data_check.py)."""

from django.core.management.base import BaseCommand, CommandError

from omi_memory import bounds
from omi_memory.data_check import data_problems, data_problems_fix


class Command(BaseCommand):
    help = (
        "Check every table for values the input bounds forbid (written before they held): dates and times "
        "outside DATES_FROM..DATES_BEFORE, text with a NUL character or a lone surrogate. Exits 1 if any "
        "is found; --fix sets such a time to NULL (or, where it is required, to the nearest end of the "
        "range) and removes the characters."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="repair what is found")

    def handle(self, *args, fix: bool, **options):
        problems = data_problems()
        if not problems:
            self.stdout.write(self.style.SUCCESS(f"no problems: every date is {bounds.dates_rule()}, no text has NUL"))
            return
        for problem in problems:
            self.stdout.write(problem.describe())
        if not fix:
            self.stdout.write(
                "Such rows make the pages and API answers that read them fail. Run `manage.py check_data --fix` "
                "to set those times to NULL (or, where one is required, to the nearest end of the range) and "
                "remove the characters, then reprocess the memories listed (their vectors carry the old values)."
            )
            raise CommandError(f"{len(problems)} field(s) hold values out of bounds")
        changed = data_problems_fix(problems)
        self.stdout.write(self.style.SUCCESS(f"fixed {changed} value(s)"))
        memories = sorted({i for p in problems if p.model._meta.label == "memories.Memory" for i in p.ids})
        if memories:
            ids = " ".join(str(i) for i in memories)
            self.stdout.write(f"reprocess these memories so their vectors and extraction follow: {ids}")
