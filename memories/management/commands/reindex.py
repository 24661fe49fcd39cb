"""Embed every memory again with the current embedder: to move the store to a new model."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.models import Memory, VectorIndex
from memories.parts.embedders import get_embedder
from memories.parts.vectorstores import get_vector_store
from memories.vectors import chunking, memory_vectors_reindex


class Command(BaseCommand):
    help = (
        "Re-embed the indexed memories (all, or one user's) with the configured embedder and chunking, in "
        "batches, and record them on the vector store. To change models: set EMBEDDER (and, for a new "
        "dimension on Pinecone, PINECONE_HOST of an index of that dimension), then run this; to change "
        "chunking (CHUNK_TOKENS, SNIPPET_TOKENS, SNIPPET_VECTORS), the same: searches go on meanwhile."
    )

    def add_arguments(self, parser):
        parser.add_argument("--uid", help="only this user's memories (the model must not change)")
        parser.add_argument("--batch-size", type=int, default=64)

    def handle(self, *args, uid: str | None, batch_size: int, **options):
        embedder, store = get_embedder(), get_vector_store()
        record = VectorIndex.objects.filter(store=store.identity).first()
        changing = record is not None and (record.model, record.dim) != (embedder.model, embedder.dim)
        if changing and uid:
            raise CommandError(
                f"the store holds {record.model} ({record.dim} dims) and the embedder is {embedder.model} "
                f"({embedder.dim} dims): reindex every user (without --uid) to change models"
            )
        enforced = store.dimension()
        if enforced is not None and enforced != embedder.dim:
            raise CommandError(
                f"the {store.name} index has dimension {enforced}; {embedder.model} makes {embedder.dim}"
            )
        if changing:
            self.stdout.write(
                f"moving {store.identity} from {record.model} ({record.dim}) to {embedder.model} "
                f"({embedder.dim}); searches are refused until this finishes"
            )
            if record.dim != embedder.dim and hasattr(store, "clear"):
                store.clear()  # vectors of another dimension cannot stay beside the new ones
        cut = chunking(embedder)
        if record is not None and record.chunking != cut:
            self.stdout.write(f"moving {store.identity} from chunking {record.chunking or 'not noted'!r} to {cut!r}")
        store.set_model(embedder.model, embedder.dim, cut)

        memories = Memory.objects.filter(status=Memory.Status.INDEXED).order_by("id")
        if uid:
            memories = memories.filter(uid=uid)
        ids = list(memories.values_list("id", flat=True))
        failed = 0
        for start in tqdm(range(0, len(ids), batch_size), desc="reindexing", unit="batch"):
            batch = list(Memory.objects.filter(id__in=ids[start : start + batch_size]).order_by("id"))
            problems = memory_vectors_reindex(memories=batch)
            for memory_id, exc in problems.items():
                failed += 1
                self.stderr.write(f"memory {memory_id}: not reindexed: {exc}")
        self.stdout.write(self.style.SUCCESS(f"reindexed {len(ids) - failed} memories with {embedder.model} ({cut})"))
        if failed:
            raise CommandError(f"{failed} memories could not be reindexed: run the command again")
