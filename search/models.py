from django.db import models
from django.utils import timezone

from memories.models import Memory


class Experiment(models.Model):
    """An online experiment: two arms (each a strategy, its parameters and an index version) that
    share the searches of the users it takes in (`traffic_share` of them, by a stable hash of the
    experiment and the uid; only those of `uids` when that is not empty). `ab`: a user's searches
    all go to one arm; `interleave`: both arms rank every search and team-draft interleaving mixes
    them in one list, each result credited to its arm (search/experiments.py). At most one runs."""

    class Mode(models.TextChoices):
        AB = "ab", "A/B: each user sees one arm"
        INTERLEAVE = "interleave", "team-draft interleaving: both arms in one list"

    class State(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        ENDED = "ended"

    name = models.CharField(max_length=200)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.AB)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT, db_index=True)
    traffic_share = models.FloatField()  # 0 < share <= 1: the share of users taken in
    uids = models.JSONField(default=list, blank=True)  # the allow-list; empty: every user
    arm_a = models.JSONField()  # {"strategy", "params", "index_version"}
    arm_b = models.JSONField()
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)  # first started
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="running"), name="one_running_experiment"
            ),
            models.CheckConstraint(
                condition=models.Q(traffic_share__gt=0, traffic_share__lte=1), name="experiment_traffic_share"
            ),
        ]

    def __str__(self) -> str:
        return f"experiment {self.id} {self.name!r} ({self.mode}, {self.state})"

    def arm(self, name: str) -> dict:
        return {"a": self.arm_a, "b": self.arm_b}[name]


class SearchLog(models.Model):
    """One search: who asked, for which user, how, what came back (in order, with scores). A search
    an experiment took records it and its arm ("a", "b", or "interleaved": then each result says
    its arm)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    api_key = models.ForeignKey("memories.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    uid = models.CharField(max_length=128, db_index=True)
    queries = models.JSONField()
    strategy = models.CharField(max_length=32)
    # k, half_life_days, fusion, relevance_floor, filters, strategy_params (every parameter of the strategy used)
    params = models.JSONField(default=dict)
    results = models.JSONField(default=list)  # [{"memory_id", "score", "weak"[, "arm"]}], best first
    latency_ms = models.FloatField()
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="searches"
    )
    arm = models.CharField(max_length=16, blank=True)  # "a", "b", "interleaved"; "" outside experiments

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
        verbose_name = "judgment"
        constraints = [models.UniqueConstraint(fields=["search", "memory"], name="one_judgment_per_result")]

    def __str__(self) -> str:
        return f"{'relevant' if self.relevant else 'not relevant'}: memory {self.memory_id} in search {self.search_id}"


class ResultUse(models.Model):
    """An implicit signal: a result of a search was used (opened, clicked) by the user it was for."""

    search = models.ForeignKey(SearchLog, on_delete=models.CASCADE, related_name="uses")
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey("memories.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "result used"
        verbose_name_plural = "results used"
        constraints = [models.UniqueConstraint(fields=["search", "memory"], name="one_use_per_result")]

    def __str__(self) -> str:
        return f"used: memory {self.memory_id} in search {self.search_id}"


class EvalRun(models.Model):
    """One strategy evaluated on a labelled data set (`manage.py evaluate`)."""

    created_at = models.DateTimeField(auto_now_add=True)
    dataset = models.CharField(max_length=300)
    split = models.CharField(max_length=16)
    strategy = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    metrics = models.JSONField()  # queries, recall@1/5/10, mrr, ndcg@10, by_category
    embedding_model = models.CharField(max_length=128)
    profile = models.CharField(max_length=100, blank=True)  # the parameter profile used ("": the defaults)
    index_version = models.CharField(max_length=100, blank=True)  # the index version searched ("": the live one)
    seconds = models.FloatField()

    class Meta:
        verbose_name = "evaluation run"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.strategy} on {self.dataset} {self.split}: nDCG@10 {self.metrics.get('ndcg@10')}"


class ParameterProfile(models.Model):
    """A named set of one strategy's parameters (search.strategies.PARAMS), with where it came from
    (`manage.py tune`: folds, judged and labelled queries, metrics before and after on held-out folds).
    Searches use it by default only while it is active: at most one per strategy."""

    name = models.CharField(max_length=100, unique=True)
    strategy = models.CharField(max_length=32)
    params = models.JSONField()  # every parameter of the strategy
    source = models.JSONField(default=dict)  # tune: folds, queries, judgments, before, after, per fold
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)  # the last activation

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy"], condition=models.Q(active=True), name="one_active_profile_per_strategy"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.strategy}{', active' if self.active else ''})"

    @property
    def tuned(self) -> dict | None:
        """Where `tune` fitted it: folds, queries, and held-out metrics before and after (None: not by tune)."""
        return self.source if self.source.get("kind") == "tune" else None


class Job(models.Model):
    """What a run done by a task records: its status (queued -> running -> done or failed), why it
    failed, who started it (a dashboard user; the audit trail names an API key) and when. A job
    whose message or worker was lost is sent again by the sweeper (search/analysis/jobs.py):
    `updated_at` is when it was last sent, or the running worker's last heartbeat."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)  # workers that took it
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["status", "updated_at"])]
        ordering = ["-created_at"]


class ClusterRun(Job):
    """KMeans over one user's memory vectors (`search.analysis.clusters`), run as a task and kept."""

    uid = models.CharField(max_length=128, db_index=True)
    k_requested = models.PositiveIntegerField(null=True, blank=True)  # None: chosen by silhouette
    k_min = models.PositiveIntegerField(default=2)
    k_max = models.PositiveIntegerField(default=10)
    k = models.PositiveIntegerField(null=True, blank=True)  # the k used
    progress = models.CharField(max_length=200, blank=True)  # live status line for the page
    silhouettes = models.JSONField(default=dict)  # {"k": score} for each k tried
    clusters = models.JSONField(default=list)  # [{"index", "label", "terms", "size", "memory_ids"}]
    points = models.JSONField(default=list)  # [{"memory_id", "x", "y", "cluster"}], 2-D projection
    embedding_model = models.CharField(max_length=128, blank=True)
    memories = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"clusters of {self.uid} ({self.status}, k={self.k})"


class DuplicatePair(models.Model):
    """Two memories of one user whose vectors are nearly the same (`search.analysis.duplicates`).

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


class DuplicateScan(Job):
    """One scan for duplicate pairs (`search.analysis.duplicates.duplicate_scan`) of one user, or
    (`uid` empty) of every user, run as a task; what it found is kept for its status URL."""

    uid = models.CharField(max_length=128, blank=True, db_index=True)
    threshold = models.FloatField()
    counts = models.JSONField(default=dict)  # users, memories, pairs, created, refreshed, kept_closed, dropped

    def __str__(self) -> str:
        return f"duplicate scan of {self.uid or 'every user'} ({self.status})"


class LexicalSnapshot(models.Model):
    """A user's BM25 index as a process saved it (search/lexical.py): what a process without a copy
    of that index loads, then brings up to date (only the memories changed since are read and
    tokenized), instead of tokenizing every memory of the user. One per user, replaced only by one
    of a later state (`listed_at`: when the memories it holds were listed) or of another layout."""

    uid = models.CharField(max_length=128, unique=True)
    layout = models.CharField(max_length=64)  # the format and tokenizer it was made with: another is never read
    listed_at = models.DateTimeField()
    memories = models.PositiveIntegerField()
    written_at = models.DateTimeField()
    data = models.BinaryField()  # np.savez_compressed arrays, no pickles (search.lexical.snapshot_encode)

    def __str__(self) -> str:
        return f"BM25 snapshot of {self.uid}: {self.memories} memories listed at {self.listed_at:%Y-%m-%d %H:%M:%S}"
