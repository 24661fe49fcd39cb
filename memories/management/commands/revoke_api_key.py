from django.core.management.base import BaseCommand, CommandError

from memories.selectors import api_key_find
from memories.services import api_key_revoke
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError


class Command(BaseCommand):
    help = "Revoke an API key (by its number or prefix, as list_api_keys shows them): it gets 401 from now on."

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's number or prefix")

    def handle(self, *args, key: str, **options):
        try:
            revoked = api_key_revoke(key=api_key_find(id_or_prefix=key), actor=Actor.command())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"API key #{revoked.id} {revoked.prefix}… ({revoked.name}) revoked"))
