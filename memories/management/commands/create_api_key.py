from django.core.management.base import BaseCommand, CommandError

from memories.management.expiry import add_expiry_arguments, expiry_from
from memories.services import api_key_create
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create an API key and print it (alone, on the last line). Only its hash is stored; "
        "it works until it is revoked (revoke_api_key) or its expiry passes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--uid", default="", help="scope the key to one user (default: all users)")
        parser.add_argument(
            "--admin", action="store_true", help="give the key the admin scope (all users, and admin-only operations)"
        )
        add_expiry_arguments(parser)

    def handle(
        self, *args, name: str, uid: str, admin: bool, expires_in: int | None, expires_at: str | None, **options
    ):
        try:
            expiry = expiry_from(expires_in=expires_in, expires_at=expires_at)
            key, raw = api_key_create(name=name, uid=uid, admin=admin, expires_at=expiry, actor=Actor.command())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        scope = f"uid {key.uid}" if key.uid else key.scope
        until = f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
        self.stderr.write(f"API key #{key.id} {key.name!r} ({scope}{until}); it is shown once, store it now:")
        self.stdout.write(raw)
