"""Clusters of one user's memories: KMeans over their memory vectors, run as a task, kept.

`cluster_run_create` checks the request and enqueues `search.tasks.cluster_memories`;
`cluster_run_execute` does the work: k given or chosen by the best silhouette, a label per cluster
from its most distinctive terms (c-TF-IDF: a cluster's words against everyone else's), and a 2-D
projection (PCA) for the map. The page reads a run through `cluster_run_get` / `cluster_run_result`.

sklearn is imported inside the functions that use it, so importing this module stays cheap.
"""

import logging
import math
from collections import Counter
from functools import partial

import numpy as np
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from memories.models import AuditEvent, Memory
from memories.parts.embedders import get_embedder
from memories.selectors import memory_vectors_matrix
from memories.services import audit_record
from memories.text import LABEL_STOP_WORDS, SENTENCE_END, SPEAKER_LINES, WORD
from omi_memory.actors import Actor
from omi_memory.errors import Conflict, NotFound, ValidationFailed

from ..models import ClusterRun
from .jobs import job_claim, job_heartbeat, job_send

logger = logging.getLogger(__name__)

MIN_MEMORIES = 3  # a silhouette needs 2 <= k <= n - 1
MIN_CLUSTER_SIZE = 2  # auto k passes over a k that leaves a memory alone, if another k does not
MEMORIES_PER_CLUSTER = 3  # auto k tries at most n / 3 clusters (and 2 in any case)
MAX_CLUSTERS = 100  # the largest k asked for (given, or the top of the range searched)
DEFAULT_K_MAX = 10
LABEL_TERMS = 3
RANDOM_STATE = 0
N_INIT = 4
SILHOUETTE_SAMPLE = 2000  # beyond this many memories, a silhouette is measured on a fixed sample


class ClusteringFailed(Exception):
    """A run cannot be done; the message is what the page shows."""


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------


def cluster_run_create(
    *, uid: str, k: int | None = None, k_min: int = 2, k_max: int = DEFAULT_K_MAX, actor: Actor
) -> ClusterRun:
    """Store a queued run for one user's indexed memories and enqueue it once committed.

    `k=None`: k is the one with the best silhouette in k_min..min(k_max, n / 3) among those whose
    clusters all have MIN_CLUSTER_SIZE memories or more (any, when none has)."""
    uid = (uid or "").strip()
    if not uid:
        raise ValidationFailed("choose a uid")
    if max(k or 0, k_min, k_max) > MAX_CLUSTERS:
        raise ValidationFailed(f"k is at most {MAX_CLUSTERS}")
    if k is not None and k < 2:
        raise ValidationFailed(f"k must be at least 2 (got {k})")
    if k is None and k_min < 2:
        raise ValidationFailed(f"the smallest k must be at least 2 (got {k_min})")
    if k is None and k_min > k_max:
        raise ValidationFailed(f"the smallest k ({k_min}) is larger than the largest ({k_max})")
    # What the user's memories allow: a conflict with what is stored, not a malformed request.
    n = Memory.objects.filter(uid=uid, status=Memory.Status.INDEXED).count()
    if n == 0:
        raise Conflict(f"uid {uid!r} has no indexed memories", code="too_few_memories")
    if n < MIN_MEMORIES:
        raise Conflict(
            f"uid {uid!r} has {n} indexed memories; clustering needs at least {MIN_MEMORIES}", code="too_few_memories"
        )
    if (k or k_min) >= n:
        which = "k" if k is not None else "the smallest k"
        raise Conflict(
            f"{which} must be smaller than the number of indexed memories ({n}); got {k or k_min}",
            code="too_few_memories",
        )
    with transaction.atomic():
        run = ClusterRun.objects.create(
            uid=uid,
            k_requested=k,
            k_min=k_min,
            k_max=k_max,
            created_by_id=actor.user_id,
        )
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CLUSTERS_RUN,
            uid=uid,
            target_type="cluster_run",
            target_ids=[run.id],
            details={"k": k, "k_min": k_min, "k_max": k_max} if k is None else {"k": k},
        )
        transaction.on_commit(partial(job_send, ClusterRun, run.id))
    return run


def cluster_run_execute(*, run_id: int) -> str:
    """Do one run: claim it (`jobs.job_claim`), cluster, store the result; any error is recorded
    as `failed` with its reason. Returns the final status (or the current one when the run was not
    claimed: another worker has it, or it is finished)."""
    if not job_claim(ClusterRun, run_id, progress="reading vectors"):
        run = ClusterRun.objects.filter(id=run_id).first()
        return run.status if run else "missing"
    run = ClusterRun.objects.get(id=run_id)
    try:
        with job_heartbeat(ClusterRun, run_id):
            result = _cluster(run, report=lambda line: ClusterRun.objects.filter(id=run_id).update(progress=line))
    except Exception as exc:  # recorded for the page, whatever it was
        if not isinstance(exc, ClusteringFailed):
            logger.exception("cluster run %s failed", run_id)
        reason = str(exc) if isinstance(exc, ClusteringFailed) else f"{type(exc).__name__}: {exc}"
        ClusterRun.objects.filter(id=run_id).update(
            status=ClusterRun.Status.FAILED, error=reason, progress="", finished_at=timezone.now()
        )
        return ClusterRun.Status.FAILED
    ClusterRun.objects.filter(id=run_id).update(
        status=ClusterRun.Status.DONE, progress="", finished_at=timezone.now(), **result
    )
    return ClusterRun.Status.DONE


def _cluster(run: ClusterRun, *, report) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    ids, matrix = memory_vectors_matrix(uid=run.uid)
    n = len(ids)
    if n < MIN_MEMORIES:
        raise ClusteringFailed(
            f"uid {run.uid!r} has {n} indexed memories with vectors of the current model; "
            f"clustering needs at least {MIN_MEMORIES}"
        )
    if run.k_requested is not None:
        candidates = [run.k_requested]
        if run.k_requested >= n:
            raise ClusteringFailed(f"k={run.k_requested} needs more than {n} indexed memories")
    else:
        top = min(run.k_max, n - 1, max(run.k_min, n // MEMORIES_PER_CLUSTER))
        candidates = list(range(run.k_min, top + 1))
        if not candidates:
            raise ClusteringFailed(f"no k in {run.k_min}..{run.k_max} is smaller than the {n} indexed memories")

    silhouettes, labelings, smallest = {}, {}, {}
    for step, k in enumerate(candidates, start=1):
        labels = KMeans(n_clusters=k, random_state=RANDOM_STATE, n_init=N_INIT).fit_predict(matrix)
        distinct = len(set(labels.tolist()))
        sample = SILHOUETTE_SAMPLE if n > SILHOUETTE_SAMPLE else None
        score = (
            float(silhouette_score(matrix, labels, sample_size=sample, random_state=RANDOM_STATE))
            if 2 <= distinct <= n - 1
            else -1.0
        )
        silhouettes[str(k)], labelings[k], smallest[k] = round(score, 4), labels, int(np.bincount(labels).min())
        report(f"k={k}: silhouette {score:.2f} ({step}/{len(candidates)})")
    # No cluster of one where another k avoids it; then the best silhouette; ties: the fewer clusters.
    k = max(candidates, key=lambda c: (smallest[c] >= MIN_CLUSTER_SIZE, silhouettes[str(c)], -c))
    report(f"k={k}: labelling clusters and drawing the map")

    # Clusters numbered by size, largest first, so colours and cards read in a stable order.
    raw = labelings[k]
    order = sorted(set(raw.tolist()), key=lambda c: (-int((raw == c).sum()), c))
    index_of = {c: i for i, c in enumerate(order)}
    assignment = [index_of[c] for c in raw.tolist()]
    members = [[ids[i] for i in range(n) if assignment[i] == c] for c in range(len(order))]
    terms = cluster_terms(members, _memory_texts(ids))
    xy = project_2d(matrix)
    return {
        "k": k,
        "silhouettes": silhouettes,
        "memories": n,
        "embedding_model": get_embedder().model,
        "clusters": [
            {
                "index": c,
                "label": " · ".join(terms[c]) or f"cluster {c + 1}",
                "terms": terms[c],
                "size": len(members[c]),
                "memory_ids": members[c],
            }
            for c in range(len(members))
        ],
        "points": [
            {
                "memory_id": ids[i],
                "x": round(float(xy[i, 0]), 5),
                "y": round(float(xy[i, 1]), 5),
                "cluster": assignment[i],
            }
            for i in range(n)
        ],
    }


def _memory_texts(ids: list[int]) -> dict[int, str]:
    rows = Memory.objects.filter(id__in=ids).values_list("id", "title", "overview", "transcript")
    return {id_: f"{title}\n{overview}\n{transcript}" for id_, title, overview, transcript in rows}


def names(texts: list[str]) -> set[str]:
    """People's names and other proper nouns, lowercased: every word of a speaker's name ("Dr.
    Patel: ..."), and each word that is written capitalised wherever it appears, once at least
    in the middle of a sentence ("with Sofia", "this Saturday")."""
    found, lower, inside = set(), set(), set()
    for text in texts:
        for speaker in SPEAKER_LINES.findall(text):
            found.update(_word(w) for w in WORD.findall(speaker) if w[0].isupper())
        for sentence in SENTENCE_END.split(SPEAKER_LINES.sub("", text)):
            for position, word in enumerate(WORD.findall(sentence)):
                (lower if word[0].islower() else inside if position else set()).add(_word(word))
    return found | (inside - lower)


def _word(word: str) -> str:
    """A word as labels count it: lowercased, without a possessive ("Sofia's" is "sofia")."""
    return word.lower().removesuffix("'s")


def _terms(text: str, stop: frozenset) -> list[str]:
    """A text's words that may name a topic (as memories.text.content_words), and the pairs of
    them that stand next to each other in it ("crown replacement")."""
    terms = []
    for line in SPEAKER_LINES.sub("", text).splitlines():
        for sentence in SENTENCE_END.split(line):
            words = [_word(w) for w in WORD.findall(sentence)]
            keep = [len(w) > 2 and w not in stop for w in words]
            terms += [w for w, k in zip(words, keep) if k]
            terms += [f"{a} {b}" for (a, b), k in zip(zip(words, words[1:]), zip(keep, keep[1:])) if all(k)]
    return terms


def cluster_terms(members: list[list[int]], texts: dict[int, str], *, top: int = LABEL_TERMS) -> list[list[str]]:
    """Each cluster's most distinctive terms (words and pairs of words), c-TF-IDF style: a
    cluster's members form one document; a term weighs its frequency there times log(1 + average
    terms per cluster / its frequency in all clusters), so terms every cluster uses sink. Words
    that name no topic (function words, talk) and people's names are left out; a word already in
    a chosen pair is not chosen again, nor a pair that repeats a chosen word."""
    stop = LABEL_STOP_WORDS | names(list(texts.values()))
    counts = [Counter(t for m in cluster for t in _terms(texts.get(m, ""), stop)) for cluster in members]
    overall = sum(counts, Counter())
    average = sum(overall.values()) / max(len(counts), 1)
    labels = []
    for count in counts:
        total = sum(count.values()) or 1
        scored = sorted(
            ((count[t] / total * math.log(1 + average / overall[t]), t) for t in count if count[t] > 1 or " " not in t),
            key=lambda pair: (-round(pair[0], 12), -pair[1].count(" "), pair[1]),  # ties: the phrase
        )
        chosen: list[str] = []
        for _, term in scored:
            if len(chosen) == top:
                break
            if not set(term.split()) & {w for c in chosen for w in c.split()}:
                chosen.append(term)
        labels.append(chosen)
    return labels


def project_2d(matrix: np.ndarray) -> np.ndarray:
    """The rows on their first two principal components, signs fixed (each component's largest
    weight positive, whatever sklearn's convention) so the same vectors always give the same picture."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=min(2, *matrix.shape), svd_solver="full").fit(matrix)
    components = pca.components_
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    xy = pca.transform(matrix) * np.where(signs == 0, 1, signs)
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((len(xy), 2 - xy.shape[1]))])
    return xy


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def cluster_run_get(*, run_id: int, uid: str | None = None) -> ClusterRun:
    """One run, or NotFound: also, for `uid` (None: any user), another user's run."""
    runs = cluster_run_list(uid=uid).filter(id=run_id)
    run = runs.first()
    if run is None:
        raise NotFound(f"cluster run {run_id} not found")
    return run


def cluster_run_list(*, uid: str | None = None, status: str | None = None) -> QuerySet[ClusterRun]:
    """Runs, newest first, of one user (None: every user), in one status (None: any)."""
    runs = ClusterRun.objects.select_related("created_by").order_by("-created_at", "-id")
    if uid is not None:
        runs = runs.filter(uid=uid)
    if status:
        runs = runs.filter(status=status)
    return runs


def clusterable_uids() -> list[tuple[str, int]]:
    """Users with indexed memories and how many, by uid."""
    rows = Memory.objects.filter(status=Memory.Status.INDEXED).values("uid").annotate(n=Count("id")).order_by("uid")
    return [(row["uid"], row["n"]) for row in rows]


def cluster_run_members(*, run: ClusterRun, index: int) -> list[dict]:
    """One cluster of a finished run: its member memories in the run's order, each with its place
    on the map (`x`, `y`); a memory deleted since is left out. NotFound: no such cluster."""
    cluster = next((c for c in run.clusters if c["index"] == index), None)
    if cluster is None:
        raise NotFound(f"cluster run {run.id} has no cluster {index}")
    places = {p["memory_id"]: p for p in run.points if p["cluster"] == index}
    memories = (
        Memory.objects.filter(id__in=cluster["memory_ids"], uid=run.uid).exclude(status=Memory.Status.DELETED).in_bulk()
    )
    return [
        {"memory": memories[m], "x": places[m]["x"], "y": places[m]["y"]}
        for m in cluster["memory_ids"]
        if m in memories and m in places
    ]


def cluster_run_result(*, run: ClusterRun) -> dict:
    """What the page of a finished run shows: the clusters with their member memories, and each
    memory's place on the map (`x`, `y`: the run's projection) and cluster. A memory deleted
    since is left out."""
    ids = [p["memory_id"] for p in run.points]
    memories = Memory.objects.filter(id__in=ids, uid=run.uid).exclude(status=Memory.Status.DELETED).in_bulk()
    silhouette = run.silhouettes.get(str(run.k)) if run.k else None
    clusters = [
        {**cluster, "silhouette": silhouette, "members": [memories[m] for m in cluster["memory_ids"] if m in memories]}
        for cluster in run.clusters
    ]
    points = [
        {"memory": memories[p["memory_id"]], "cluster": p["cluster"], "x": p["x"], "y": p["y"]}
        for p in run.points
        if p["memory_id"] in memories
    ]
    return {"clusters": clusters, "points": points, "silhouette": silhouette}
