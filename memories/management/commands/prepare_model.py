"""Load the configured embedding model now, so that no process pays for it later."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from memories.parts.embedders import configured_embedder
from memories.parts.embedders.local import LocalEmbedder, onnx_path


class Command(BaseCommand):
    help = (
        "Load the configured embedding model now. The local model is exported to ONNX once, into "
        "MODEL_CACHE_DIR: run this where an image is built (or before the first start), so that servers "
        "and workers with a read-only disk do not fall back to torch."
    )

    def handle(self, *args, **options):
        embedder = configured_embedder()
        embedder.warm_up()
        ready = f"{embedder.model} ({embedder.dim} dims) ready"
        if isinstance(embedder, LocalEmbedder):
            if settings.LOCAL_RUNTIME == "onnx" and embedder.runtime != "onnx":
                raise CommandError(
                    "the local model could not be exported to ONNX (see the warning above): torch would run it"
                )
            ready += f": ONNX Runtime, {onnx_path()}" if embedder.runtime == "onnx" else ": torch"
        self.stdout.write(ready)
