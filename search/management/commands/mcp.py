"""`manage.py mcp`: the MCP server on stdin and stdout (omi_memory/mcp.py), for an agent that
starts it as a subprocess."""

import os

from django.core.management.base import BaseCommand, CommandError

from memories.mcp import authenticate

KEY_VARIABLE = "OMI_API_KEY"


class Command(BaseCommand):
    help = (
        "Serve the MCP tools (search_memories, add_memory, get_memory, list_memories, delete_memory) over "
        f"stdio, acting with an API key: --api-key KEY or the environment variable {KEY_VARIABLE}. Its scope "
        "applies: a key scoped to one uid may act only for that uid."
    )

    def add_arguments(self, parser):
        parser.add_argument("--api-key", default="", help=f"the API key (default: ${KEY_VARIABLE})")

    def handle(self, *args, api_key: str, **options):
        raw_key = api_key or os.environ.get(KEY_VARIABLE, "")
        if not raw_key:
            raise CommandError(f"an API key is required: --api-key KEY or {KEY_VARIABLE}")
        key = authenticate(raw_key)
        if key is None:
            raise CommandError("the API key is not valid (unknown, revoked or expired)")
        from omi_memory.mcp import run_stdio

        scope = f"uid {key.uid}" if key.uid else "all users"
        self.stderr.write(f"MCP server on stdio, acting with API key {key.prefix}… ({key.name}, {scope})")
        run_stdio(raw_key)
