"""When a key expires, as the key commands take it: `--expires-in DAYS` or `--expires-at WHEN`."""

from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from memories.services import parse_time


def add_expiry_arguments(parser, *, required: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--expires-in", type=int, metavar="DAYS", help="the key stops working in DAYS days")
    group.add_argument(
        "--expires-at",
        metavar="WHEN",
        help="the key stops working at this ISO 8601 date or time (UTC unless it says otherwise)",
    )


def expiry_from(*, expires_in: int | None, expires_at: str | None) -> datetime | None:
    if expires_in is not None:
        if not 1 <= expires_in <= 36500:
            raise CommandError("--expires-in takes a number of days from 1 to 36500")
        return timezone.now() + timedelta(days=expires_in)
    if expires_at:
        try:
            return parse_time(expires_at)
        except ValueError:
            raise CommandError(f"--expires-at {expires_at!r} is not an ISO 8601 date or time") from None
    return None
