"""Build a new index version beside the live one: another embedder, dimension or chunking."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.index_versions import index_version_build, index_version_start
from memories.parts.embedders import EMBEDDERS
from memories.parts.vectorstores import VECTOR_STORES
from omi_memory.actors import Actor
from omi_memory.errors import ApplicationError, BackendError


class Command(BaseCommand):
    help = (
        "Fill a new index version (this embedder and dimension, the configured chunking, a namespace of its "
        "own) from the indexed memories, in batches, while searches and new memories go on with the live one; "
        "new memories are written to both meanwhile. Killed, run it again with the same options: it continues. "
        "Then `index_activate VERSION` switches to it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--embedder", required=True, help=f"{', '.join(EMBEDDERS)}, or a dotted path")
        parser.add_argument("--dimensions", type=int, help="the embedder's output dimension (openai)")
        parser.add_argument("--store", choices=sorted(VECTOR_STORES), help="default: VECTOR_STORE")
        parser.add_argument("--pinecone-host", help="the Pinecone index of that dimension (default: PINECONE_HOST)")
        parser.add_argument("--batch-size", type=int, default=64)

    def handle(self, *args, embedder, dimensions, store, pinecone_host, batch_size, **options):
        if batch_size < 1 or (dimensions is not None and dimensions < 1):
            raise CommandError("--batch-size and --dimensions must be positive")
        store = store or settings.VECTOR_STORE
        host = (pinecone_host or settings.PINECONE_HOST) if store == "pinecone" else ""
        try:
            version, resumed = index_version_start(
                embedder=embedder, dimensions=dimensions, vector_store=store, host=host, actor=Actor.command()
            )
            what = f"{version.name}: {version.model} ({version.dim} dims, {version.chunking}) in {version.store}"
            self.stdout.write(f"resuming {what} after memory {version.cursor}" if resumed else f"building {what}")
            batches = index_version_build(version=version, batch_size=batch_size)
            with tqdm(desc=f"building {version.name}", unit="memory", initial=version.memories_done) as bar:
                for done, total in batches:
                    bar.total = total
                    bar.update(done)
        except (ApplicationError, BackendError) as exc:
            raise CommandError(f"{exc} (run the command again to continue)") from exc
        self.stdout.write(
            self.style.SUCCESS(f"{version.name} is ready: `manage.py index_activate {version.name}` switches to it")
        )
