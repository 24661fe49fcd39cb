"""A memory's vectors: what is embedded, building them, storing them (store and database), removing them.

Position 0 is the memory's own text (structured fields + transcript; under late chunking the
fields' vector plus the transcript's, pooled from its reads); then its transcript windows
(`-c{i}`) and snippets (`-s{i}`). The processing engine (`memories/processing.py`) builds and
upserts them; deletes and `reindex` come here too.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from omi_memory.errors import BackendError

from .models import Memory, MemoryVector
from .parts.chunking import windows
from .parts.embedders import get_embedder
from .parts.vectorstores import UpsertIncomplete, VectorRecord, get_vector_store

# What a vector embeds: the memory's own text (structured fields + transcript), a transcript window
# of about CHUNK_TOKENS, or a snippet of about SNIPPET_TOKENS (a turn or two: precise matches).
# With late chunking (the local model) windows and snippets are pooled from the transcript's token
# states, read once in windows of whole turns as long as the model reads: each vector also carries
# the context around it, and each transcript token goes through the model once (plus the memory's
# own text, which reads its start again after the title and overview).
VECTOR_KINDS = {"memory": "", "window": "c", "snippet": "s"}  # kind -> id suffix letter


@dataclass
class BuiltVectors:
    """A memory's vectors, ready to store: position 0 is the memory's own, then windows, snippets."""

    text_hash: str
    model: str
    dim: int
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray
    kinds: list[str]
    reused: bool = False


def memory_head(memory: Memory) -> str:
    """A memory's structured fields, as its own vector reads them."""
    return "\n".join(part for part in (memory.title, memory.overview, f"Category: {memory.category}") if part)


def embedding_text(memory: Memory) -> str:
    """Omi's embedding text: the structured fields and the transcript. The summary comes first
    because a model reads only so many tokens: a long transcript's tail is what gets cut."""
    return f"{memory_head(memory)}\n{memory.transcript}"


def snippet_plan(embedder) -> str:
    """How this embedder's snippets are made (SNIPPET_VECTORS): `late`, pooled from the token
    states of the transcript read once; `texts`, each snippet and window embedded as a text of its
    own; `none`, no snippets. `late` needs a model that runs here: a remote embedder cannot pool
    token states, so there it means `none` (windows only; BM25 covers much of what snippets add)."""
    plan = settings.SNIPPET_VECTORS if settings.SNIPPET_TOKENS else "none"
    return "none" if plan == "late" and not embedder.late_chunking else plan


def chunking(embedder) -> str:
    """What a memory's vectors are cut from, as the index version notes it (and a memory's text
    hash includes it)."""
    plan = snippet_plan(embedder)
    if plan == "none":
        return f"windows {settings.CHUNK_TOKENS}, no snippets"
    reads = f", reads {settings.LATE_READ_TOKENS}, memory vector of fields + transcript" if plan == "late" else ""
    return f"{plan}: windows {settings.CHUNK_TOKENS}, snippets {settings.SNIPPET_TOKENS}{reads}"


@dataclass
class _Plan:
    """What is embedded for a memory: texts (vectors of None: to embed), vector ids, kinds."""

    texts: list[str]
    vectors: list[np.ndarray | None]
    ids: list[str]
    kinds: list[str]
    transcript_vector: np.ndarray | None = None  # added to the memory's own vector once embedded


def _plan(memory: Memory, embedder) -> _Plan:
    main = embedding_text(memory)
    plan = snippet_plan(embedder)
    snippets, snippet_vectors, transcript_vector = [], [], None
    if plan == "late":
        # The reads that make the windows and snippets cover the whole transcript, so the memory's
        # own vector reads its fields alone and adds the transcript's vector pooled from those
        # reads: the transcript is not read again, and two conversations with one title still differ.
        chunks = embedder.embed_late(memory.transcript)
        main, transcript_vector = memory_head(memory), chunks.whole
        parts, part_vectors = chunks.windows, list(chunks.window_vectors)
        snippets, snippet_vectors = chunks.snippets, list(chunks.snippet_vectors)
        if len(parts) <= 1:
            parts, part_vectors = [], []  # one window is the whole transcript, in the memory's vector
    else:
        count = embedder.count_tokens_batch
        parts = windows(memory.transcript, max_tokens=settings.CHUNK_TOKENS, count_tokens=count)
        part_vectors = [None] * len(parts)
        if plan == "texts":
            snippets = windows(memory.transcript, max_tokens=settings.SNIPPET_TOKENS, count_tokens=count)
            snippet_vectors = [None] * len(snippets)
        if len(parts) <= 1 and embedder.count_tokens(main) <= embedder.max_tokens:
            parts, part_vectors = [], []  # the memory's own vector already reads the whole transcript
    if len(snippets) <= 1:
        snippets, snippet_vectors = [], []
    return _Plan(
        texts=[main, *parts, *snippets],
        vectors=[None, *part_vectors, *snippet_vectors],
        ids=[
            memory.vector_id,
            *(f"{memory.vector_id}-c{i}" for i in range(len(parts))),
            *(f"{memory.vector_id}-s{i}" for i in range(len(snippets))),
        ],
        kinds=["memory"] + ["window"] * len(parts) + ["snippet"] * len(snippets),
        transcript_vector=transcript_vector,
    )


def _text_hash(memory: Memory, embedder) -> str:
    """What a memory's vectors depend on: the model, the chunking, its own text and transcript."""
    digest = hashlib.sha256(f"{embedder.model}|{embedder.dim}|{chunking(embedder)}".encode())
    for text in (embedding_text(memory), memory.transcript):
        digest.update(b"\x1e" + text.encode())
    return digest.hexdigest()


def vector_metadata(memory: Memory, kind: str) -> dict:
    """The metadata a vector of `memory` carries in the store (Omi's, and what it embeds)."""
    return {
        "uid": memory.uid,
        "memory_id": str(memory.id),
        "created_at": int(memory.created_at.timestamp()),
        "category": memory.category,
        "source": memory.source,
        "kind": kind,
    }


def memory_vectors_build_many(*, memories: list[Memory], force: bool = False) -> dict[int, BuiltVectors]:
    """Embed memories (their structured fields set): every text to embed in one embedder call,
    snippets and windows pooled from the transcript read once (SNIPPET_VECTORS=late). A memory
    whose text and chunking are unchanged since it was indexed gets its stored vectors again, and
    nothing of it is embedded (`force=True` embeds anyway)."""
    embedder = get_embedder()
    hashes = {memory.id: _text_hash(memory, embedder) for memory in memories}
    built: dict[int, BuiltVectors] = {}
    unchanged = [m for m in memories if not force and m.text_hash == hashes[m.id]]
    stored: dict[int, list[MemoryVector]] = {}
    for vector in MemoryVector.objects.filter(memory__in=unchanged).order_by("memory_id", "position"):
        stored.setdefault(vector.memory_id, []).append(vector)
    for memory in unchanged:
        rows = stored.get(memory.id, [])
        if rows and all(v.model == embedder.model and v.dim == embedder.dim for v in rows):
            built[memory.id] = BuiltVectors(
                hashes[memory.id],
                embedder.model,
                embedder.dim,
                [v.vector_id for v in rows],
                [v.text for v in rows],
                np.stack([v.as_array() for v in rows]),
                [v.kind for v in rows],
                reused=True,
            )

    todo = [m for m in memories if m.id not in built]
    plans = {memory.id: _plan(memory, embedder) for memory in todo}
    to_embed = [text for m in todo for text, v in zip(plans[m.id].texts, plans[m.id].vectors) if v is None]
    embedded = iter(embedder.embed_documents(to_embed)) if to_embed else iter(())
    for memory in todo:
        plan = plans[memory.id]
        vectors = np.stack([next(embedded) if v is None else v for v in plan.vectors])
        if plan.transcript_vector is not None:
            own = vectors[0] + plan.transcript_vector
            vectors[0] = own / max(float(np.linalg.norm(own)), 1e-12)
        built[memory.id] = BuiltVectors(
            hashes[memory.id], embedder.model, embedder.dim, plan.ids, plan.texts, vectors, plan.kinds
        )
    return built


def memory_vectors_upsert_many(*, memories: list[Memory], built: dict[int, BuiltVectors]) -> dict[int, BackendError]:
    """Write the memories' vectors to the store (in its batches) and remove the ones they no
    longer have. Returns the memories whose vectors were not all acknowledged, with the error."""
    store = get_vector_store()
    embedder = get_embedder()
    store.check_model(embedder.model, embedder.dim, record=True, chunking=chunking(embedder))
    records = []
    for memory in memories:
        vectors = built[memory.id]
        records += [
            VectorRecord(id=i, values=v, metadata=vector_metadata(memory, kind))
            for i, v, kind in zip(vectors.ids, vectors.vectors, vectors.kinds)
        ]
    failed: dict[int, BackendError] = {}
    try:
        store.upsert(records)
    except UpsertIncomplete as exc:
        failed = {m.id: exc for m in memories if not set(built[m.id].ids) <= exc.acknowledged}
    done = [m for m in memories if m.id not in failed]
    current = {i for m in done for i in built[m.id].ids}
    stale = list(
        MemoryVector.objects.filter(memory__in=done).exclude(vector_id__in=current).values_list("vector_id", flat=True)
    )
    if stale:
        try:
            store.delete(stale)
        except BackendError as exc:
            failed.update({m.id: exc for m in done})
    return failed


def memory_vectors_save(*, built: dict[int, BuiltVectors]) -> None:
    """Keep memories' vectors in the database too (`built`: memory id -> its vectors); call it in
    the transaction that marks them indexed."""
    MemoryVector.objects.filter(memory_id__in=list(built)).delete()
    MemoryVector.objects.bulk_create(
        (
            MemoryVector(
                memory_id=memory_id,
                position=position,
                kind=kind,
                vector_id=vector_id,
                text=text if position else "",
                model=vectors.model,
                dim=vectors.dim,
                vector=np.asarray(vector, dtype="<f4").tobytes(),
            )
            for memory_id, vectors in built.items()
            for position, (vector_id, text, vector, kind) in enumerate(
                zip(vectors.ids, vectors.texts, vectors.vectors, vectors.kinds)
            )
        ),
        batch_size=500,
    )


def memory_vectors_delete(*, memory: Memory, extra_ids: list[str] | None = None) -> None:
    """Remove a memory's vectors from the store and the database."""
    ids = set(MemoryVector.objects.filter(memory=memory).values_list("vector_id", flat=True))
    ids.update(extra_ids or [])
    ids.add(memory.vector_id)
    get_vector_store().delete(sorted(ids))
    MemoryVector.objects.filter(memory=memory).delete()


def memory_vectors_reindex(*, memories: list[Memory]) -> dict[int, BackendError]:
    """Embed memories again with the current embedder (no extraction), store their vectors and
    record the model on them. Returns the memories that could not be stored, with the error."""
    built = memory_vectors_build_many(memories=memories, force=True)
    failed = memory_vectors_upsert_many(memories=memories, built=built)
    stored = {memory.id: built[memory.id] for memory in memories if memory.id not in failed}
    with transaction.atomic():
        memory_vectors_save(built=stored)
        for memory_id, vectors in stored.items():
            Memory.objects.filter(id=memory_id).update(
                text_hash=vectors.text_hash, embedding_model=vectors.model, embedding_dim=vectors.dim
            )
    return failed


def user_vectors_erase(*, uid: str) -> int:
    """Remove every vector of one user from the store and the database; returns how many."""
    known = list(MemoryVector.objects.filter(memory__uid=uid).values_list("vector_id", flat=True))
    known += [f"{uid}-{memory_id}" for memory_id in Memory.objects.filter(uid=uid).values_list("id", flat=True)]
    deleted = get_vector_store().delete_uid(uid, known_ids=sorted(set(known)))
    MemoryVector.objects.filter(memory__uid=uid).delete()
    return deleted
