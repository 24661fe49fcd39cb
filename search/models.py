import numpy as np
from django.db import models

from memories.models import Memory


class MemoryVector(models.Model):
    """A memory's vectors, kept in the database whatever the vector store.

    Position 0 is the memory's own vector (structured fields + transcript); then come its
    transcript windows and snippets (`kind`). Clustering, duplicate detection and reprocessing without re-embedding
    read them from here.
    """

    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="vectors")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, default="memory")  # memory, window or snippet
    vector_id = models.CharField(max_length=300, unique=True)
    text = models.TextField(blank=True)  # the window's text; empty for position 0
    model = models.CharField(max_length=128)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()  # float32, little-endian

    class Meta:
        ordering = ["memory_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["memory", "position"], name="memory_vector_position")
        ]

    def __str__(self) -> str:
        return self.vector_id

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f4")


class LocalVector(models.Model):
    """A record of the `local` vector store: one vector, its id and metadata, in a namespace."""

    namespace = models.CharField(max_length=64)
    record_id = models.CharField(max_length=300)
    uid = models.CharField(max_length=128)
    memory_id = models.CharField(max_length=64)
    created_at = models.BigIntegerField()  # epoch seconds
    category = models.CharField(max_length=32, blank=True)
    source = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=16, blank=True)
    metadata = models.JSONField(default=dict)
    values = models.BinaryField()  # float32, little-endian

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "record_id"], name="local_vector_id")
        ]
        indexes = [
            models.Index(fields=["namespace", "uid", "created_at"]),
            models.Index(fields=["namespace", "memory_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.record_id}"


class LocalVectorVersion(models.Model):
    """Changes whenever one user's vectors in the local store change: processes that keep those
    vectors in memory read them again when it differs from theirs."""

    namespace = models.CharField(max_length=64)
    uid = models.CharField(max_length=128)
    version = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "uid"], name="local_vector_version")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.uid}: {self.version}"


class VectorIndex(models.Model):
    """Which embedding model and dimension built a vector store (one row per store and namespace):
    a query or upsert with another model is refused, never silently mixed in."""

    store = models.CharField(max_length=300, unique=True)  # e.g. "local/ns1", "pinecone/<host>/ns1"
    model = models.CharField(max_length=128)
    dim = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.store}: {self.model} ({self.dim})"


class SearchLog(models.Model):
    """One search: who asked, for which user, how, what came back (in order, with scores)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    api_key = models.ForeignKey("memories.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    uid = models.CharField(max_length=128, db_index=True)
    queries = models.JSONField()
    strategy = models.CharField(max_length=32)
    params = models.JSONField(default=dict)  # k, time_decay, fusion, filters
    results = models.JSONField(default=list)  # [{"memory_id", "score"}], best first
    latency_ms = models.FloatField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.strategy} search for {self.uid}: {self.queries[0] if self.queries else ''}"


class RelevanceFeedback(models.Model):
    """An analyst's judgment of one result of one search."""

    search = models.ForeignKey(SearchLog, on_delete=models.CASCADE, related_name="feedback")
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="feedback")
    relevant = models.BooleanField()
    note = models.TextField(blank=True)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey("memories.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["search", "memory"], name="one_judgment_per_result")]

    def __str__(self) -> str:
        return f"{'relevant' if self.relevant else 'not relevant'}: memory {self.memory_id} in search {self.search_id}"


class EvalRun(models.Model):
    """One strategy evaluated on a labelled data set (`manage.py evaluate`)."""

    created_at = models.DateTimeField(auto_now_add=True)
    dataset = models.CharField(max_length=300)
    split = models.CharField(max_length=16)
    strategy = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    metrics = models.JSONField()  # queries, recall@1/5/10, mrr, ndcg@10, by_category
    embedding_model = models.CharField(max_length=128)
    seconds = models.FloatField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.strategy} on {self.dataset} {self.split}: nDCG@10 {self.metrics.get('ndcg@10')}"


class ClusterRun(models.Model):
    """KMeans over one user's memory vectors (`search.clustering`), run as a task and kept."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    uid = models.CharField(max_length=128, db_index=True)
    k_requested = models.PositiveIntegerField(null=True, blank=True)  # None: chosen by silhouette
    k_min = models.PositiveIntegerField(default=2)
    k_max = models.PositiveIntegerField(default=10)
    k = models.PositiveIntegerField(null=True, blank=True)  # the k used
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.CharField(max_length=200, blank=True)  # live status line for the page
    error = models.TextField(blank=True)
    silhouettes = models.JSONField(default=dict)  # {"k": score} for each k tried
    clusters = models.JSONField(default=list)  # [{"index", "label", "terms", "size", "memory_ids"}]
    points = models.JSONField(default=list)  # [{"memory_id", "x", "y", "cluster"}], 2-D projection
    embedding_model = models.CharField(max_length=128, blank=True)
    memories = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"clusters of {self.uid} ({self.status}, k={self.k})"


class DuplicatePair(models.Model):
    """Two memories of one user whose vectors are nearly the same (`search.duplicates`).

    `memory_a` has the smaller id. A dismissed pair is never raised again."""

    class Status(models.TextChoices):
        OPEN = "open"
        CONFIRMED = "confirmed"
        DISMISSED = "dismissed"
        MERGED = "merged"

    uid = models.CharField(max_length=128, db_index=True)
    memory_a = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="+")
    memory_b = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    kept = models.ForeignKey(Memory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-similarity"]
        constraints = [
            models.UniqueConstraint(fields=["memory_a", "memory_b"], name="one_pair"),
            models.CheckConstraint(condition=models.Q(memory_a__lt=models.F("memory_b")), name="pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.memory_a_id} ~ {self.memory_b_id} ({self.similarity:.3f}, {self.status})"
