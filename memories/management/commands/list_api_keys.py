from django.core.management.base import BaseCommand

from memories.selectors import api_key_list

COLUMNS = ("#", "prefix", "name", "scope", "state", "created", "by", "last used", "expires", "revoked")


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


class Command(BaseCommand):
    help = "List the API keys, newest first: prefix, scope, state, creator, times. Never a key's secret."

    def add_arguments(self, parser):
        parser.add_argument("--active", action="store_true", help="only keys that work now")

    def handle(self, *args, active: bool, **options):
        keys = [key for key in api_key_list() if not active or key.state == "active"]
        rows = [
            (
                str(key.id),
                f"{key.prefix}…",
                key.name,
                key.scope,
                key.state,
                _when(key.created_at),
                key.created_by or "-",
                _when(key.last_used_at),
                _when(key.expires_at),
                f"{_when(key.revoked_at)} by {key.revoked_by or '-'}" if key.revoked_at else "-",
            )
            for key in keys
        ]
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        for row in [COLUMNS, *rows]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if not rows:
            self.stdout.write("no API keys" if not active else "no active API keys")
