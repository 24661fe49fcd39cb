from django.core.management.base import BaseCommand, CommandError

from memories.management.expiry import add_expiry_arguments, expiry_from
from memories.selectors import api_key_find
from memories.services import api_key_expire
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Set when an API key (by its number or prefix) stops working, e.g. the end of a rotation's "
        "grace period: --expires-in DAYS or --expires-at WHEN."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's number or prefix")
        add_expiry_arguments(parser, required=True)

    def handle(self, *args, key: str, expires_in: int | None, expires_at: str | None, **options):
        try:
            expiry = expiry_from(expires_in=expires_in, expires_at=expires_at)
            changed = api_key_expire(key=api_key_find(id_or_prefix=key), expires_at=expiry, actor=Actor.command())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"API key #{changed.id} {changed.prefix}… expires {changed.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        )
