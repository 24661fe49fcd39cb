import hashlib
from datetime import timedelta

import numpy as np
from django.db import IntegrityError, models
from django.db.models import Q
from django.utils import timezone

# A user id: what Omi's uids look like, and safe inside a vector id `{uid}-{memory_id}`.
UID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
# What a memory's own fields may hold (the API, the import and `memory_build` check them).
LANGUAGE_LENGTH = (2, 16)
EXTERNAL_ID_MAX = 200


class Category(models.TextChoices):
    """Omi's conversation categories (backend/models/conversation.py, CategoryEnum)."""

    PERSONAL = "personal"
    EDUCATION = "education"
    HEALTH = "health"
    FINANCE = "finance"
    LEGAL = "legal"
    PHILOSOPHY = "philosophy"
    SPIRITUAL = "spiritual"
    SCIENCE = "science"
    ENTREPRENEURSHIP = "entrepreneurship"
    PARENTING = "parenting"
    ROMANCE = "romantic"
    TRAVEL = "travel"
    INSPIRATION = "inspiration"
    TECHNOLOGY = "technology"
    BUSINESS = "business"
    SOCIAL = "social"
    WORK = "work"
    SPORTS = "sports"
    POLITICS = "politics"
    LITERATURE = "literature"
    HISTORY = "history"
    ARCHITECTURE = "architecture"
    MUSIC = "music"
    WEATHER = "weather"
    NEWS = "news"
    ENTERTAINMENT = "entertainment"
    PSYCHOLOGY = "psychology"
    REAL = "real"
    DESIGN = "design"
    FAMILY = "family"
    ECONOMICS = "economics"
    ENVIRONMENT = "environment"
    OTHER = "other"

    @classmethod
    def coerce(cls, value: object) -> str:
        """Any value to a category: an unknown one becomes `other`."""
        text = str(value or "").strip().lower()
        return text if text in cls.values else cls.OTHER


class Source(models.TextChoices):
    """Omi's conversation sources (backend/models/conversation.py, ConversationSource)."""

    OMI = "omi"
    FRIEND = "friend"
    FRIEND_COM = "friend_com"
    OPENGLASS = "openglass"
    FIELDY = "fieldy"
    BEE = "bee"
    PLAUD = "plaud"
    FRAME = "frame"
    LIMITLESS = "limitless"
    APPLE_WATCH = "apple_watch"
    PHONE = "phone"
    DESKTOP = "desktop"
    SCREENPIPE = "screenpipe"
    WORKFLOW = "workflow"
    SDCARD = "sdcard"
    EXTERNAL_INTEGRATION = "external_integration"
    ONBOARDING = "onboarding"


class MemoryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """A change of status is a change: it stamps `updated_at` (which `auto_now` does on save()
        only), so that `updated_at` says since when a memory is in its status (how long it has
        waited in the queue, when it failed)."""
        if "status" in kwargs:
            kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class Memory(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        INDEXED = "indexed"
        FAILED = "failed"
        DELETED = "deleted"

    uid = models.CharField(max_length=128, db_index=True)
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX, blank=True, default="")
    transcript = models.TextField()
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.OMI)
    language = models.CharField(max_length=LANGUAGE_LENGTH[1], default="en")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Structured data, filled by the extractor.
    title = models.CharField(max_length=300, blank=True)
    overview = models.TextField(blank=True)
    emoji = models.CharField(max_length=16, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.OTHER)
    extractor = models.CharField(max_length=64, blank=True)
    extraction_fallback = models.TextField(blank=True)  # why the configured extractor was not used

    # Pipeline state.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)  # who holds the `processing` claim
    # Until when whoever has the memory's work (a message in the broker, a worker on it) is trusted
    # with it; past that the sweeper sends it again (memories/processing.py). None: nothing pending.
    lease_until = models.DateTimeField(null=True, blank=True)
    # Its vectors are in the store, so search finds it: also while it is reprocessed (the old vectors
    # serve until the new ones replace them); no longer once it failed or was deleted.
    searchable = models.BooleanField(default=False)
    indexed_at = models.DateTimeField(null=True, blank=True)
    text_hash = models.CharField(max_length=64, blank=True)
    embedding_model = models.CharField(max_length=128, blank=True)
    embedding_dim = models.PositiveIntegerField(null=True, blank=True)
    # Set while the memory is merged away into another (a duplicate merge); cleared by an unmerge.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_memories"
    )

    objects = MemoryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "memories"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["uid", "created_at"]),
            models.Index(fields=["status", "updated_at"]),
            # what a user's lexical index is checked against before each search, read from the index alone
            models.Index(fields=["uid", "status"], include=["indexed_at", "id"], name="memory_uid_status_version"),
            # the same for what search reads (searchable memories)
            models.Index(fields=["uid", "searchable"], include=["indexed_at", "id"], name="memory_uid_searchable"),
            # what the sweeper looks for: work whose lease has passed
            models.Index(fields=["status", "lease_until"], name="memory_status_lease"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["uid", "external_id"],
                condition=~Q(external_id=""),
                name="memory_unique_external_id_per_uid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.emoji} {self.title or 'Untitled'} ({self.uid}, #{self.id})".strip()

    @property
    def vector_id(self) -> str:
        """The id of the memory's own vector; its transcript windows add `-c{i}`."""
        return f"{self.uid}-{self.id}"


class ActionItem(models.Model):
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="action_items")
    description = models.TextField()
    completed = models.BooleanField(default=False)
    due_at = models.DateTimeField(null=True, blank=True)
    # Set when a duplicate merge moved the item here: reprocessing this memory keeps it.
    merged_from = models.ForeignKey(Memory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description


class Event(models.Model):
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="events")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    start = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField(default=30)
    merged_from = models.ForeignKey(Memory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["start", "id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.start:%Y-%m-%d %H:%M})"


class ApiKey(models.Model):
    """An API key, stored as a SHA-256 hash. `uid` empty: the key may act for every user; `admin`
    (only with `uid` empty): it may also do what only a dashboard admin may (merges across users,
    retrying every failure, the index's figures, evaluation runs).

    A key is usable until it is revoked or its expiry passes (none: it never expires); either
    refuses it at the next request. Keys are never deleted, so the audit trail and the search log
    keep naming them."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    uid = models.CharField(max_length=128, blank=True)
    admin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)  # the dashboard user, or "command"
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(admin=False) | models.Q(uid=""), name="admin_key_for_every_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.scope})"

    @property
    def scope(self) -> str:
        """The key's uid, "all users", or "admin" (all users, and what only admins may do)."""
        return self.uid or ("admin" if self.admin else "all users")

    @staticmethod
    def hash(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @property
    def state(self) -> str:
        """ "revoked", "expired" or "active" (now)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditTrailIsAppendOnly("the audit trail is append-only: its rows cannot be updated")

    def delete(self):
        raise AuditTrailIsAppendOnly("the audit trail is append-only: its rows cannot be deleted")


class AuditTrailIsAppendOnly(IntegrityError):
    """Refused: a change to the audit trail (the database's triggers refuse it too)."""


class AuditEvent(models.Model):
    """One destructive or privileged action: who (a dashboard user, an API key, a command and its
    OS user), what (action, uid, target ids, a few details), when and from where. Written by the
    service that does the action, in its transaction (`memories.services.audit_record`).

    Append-only: the model refuses to save a row again or delete one, and the database refuses
    UPDATE and DELETE (triggers made by migration 0006; only the database's owner can drop them).
    No foreign keys: deleting a user or a key must not touch the trail."""

    class Action(models.TextChoices):
        MEMORY_DELETE = "memory.delete", "memory deleted"
        MEMORY_REPROCESS = "memory.reprocess", "memory reprocessed"
        MEMORY_RETRY_FAILED = "memory.retry_failed", "failed memories retried"
        USER_ERASE = "user.erase", "user erased"
        DUPLICATES_MERGE = "duplicates.merge", "duplicates merged"
        DUPLICATES_UNMERGE = "duplicates.unmerge", "duplicates unmerged"
        DUPLICATES_DISMISS = "duplicates.dismiss", "duplicates dismissed"
        DUPLICATES_SCAN = "duplicates.scan", "duplicate scan started"
        CLUSTERS_RUN = "clusters.run", "clustering started"
        API_KEY_CREATE = "api_key.create", "API key created"
        API_KEY_REVOKE = "api_key.revoke", "API key revoked"
        API_KEY_EXPIRE = "api_key.expire", "API key expiry set"
        VECTORS_RECONCILE = "vectors.reconcile", "vector reconciliation started"
        WEBHOOK_CREATE = "webhook.create", "webhook endpoint created"
        WEBHOOK_UPDATE = "webhook.update", "webhook endpoint changed"
        WEBHOOK_DELETE = "webhook.delete", "webhook endpoint deleted"
        EXPERIMENT_CREATE = "experiment.create", "search experiment defined"
        EXPERIMENT_START = "experiment.start", "search experiment started"
        EXPERIMENT_PAUSE = "experiment.pause", "search experiment paused"
        EXPERIMENT_END = "experiment.end", "search experiment ended"
        PROFILE_ACTIVATE = "profile.activate", "parameter profile activated"
        PROFILE_DEACTIVATE = "profile.deactivate", "parameter profile deactivated"
        INDEX_BUILD = "index.build", "index version build started"
        INDEX_ACTIVATE = "index.activate", "index version activated"
        INDEX_DROP = "index.drop", "index version dropped"

    class ActorType(models.TextChoices):
        USER = "user", "dashboard user"
        API_KEY = "api_key", "API key"
        COMMAND = "command", "command"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_name = models.CharField(max_length=150)  # the username, the key's prefix and name, the OS user
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_key_id = models.BigIntegerField(null=True, blank=True)
    origin = models.CharField(max_length=16)  # dashboard, api, mcp, command line
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    uid = models.CharField(max_length=128, blank=True, db_index=True)  # the memories' user, when one
    target_type = models.CharField(
        max_length=32, blank=True
    )  # memory, user, duplicate_pair, cluster_run, api_key, webhook, parameter_profile
    target_ids = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditTrailIsAppendOnly("the audit trail is append-only: a recorded event cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTrailIsAppendOnly("the audit trail is append-only: a recorded event cannot be deleted")

    @property
    def actor_label(self) -> str:
        return f"command ({self.actor_name})" if self.actor_type == self.ActorType.COMMAND else self.actor_name


# Vectors: a memory's own (kept whatever the store), and the `local` store's records and model record.


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
        db_table = "search_memoryvector"  # created by the search app, before the pipeline moved here
        ordering = ["memory_id", "position"]
        constraints = [models.UniqueConstraint(fields=["memory", "position"], name="memory_vector_position")]

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
        db_table = "search_localvector"
        constraints = [models.UniqueConstraint(fields=["namespace", "record_id"], name="local_vector_id")]
        indexes = [
            models.Index(fields=["namespace", "uid", "created_at"]),
            models.Index(fields=["namespace", "memory_id"]),
            # one user's rows in the order written, a page at a time (reconciliation's listing)
            models.Index(fields=["namespace", "uid", "id"], name="local_vector_user_rows"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.record_id}"


class LocalVectorVersion(models.Model):
    """Changes whenever one user's vectors in the local store change: processes that keep those
    vectors in memory read them again when it differs from theirs (or, from a snapshot, read only
    what changed: rows of a higher id, and `LocalVectorDeletion`s). Every write takes this row
    first, so one user's writes commit in the order of their ids. `epoch` changes when a copy
    made before can no longer catch up (the user erased, deletions forgotten)."""

    namespace = models.CharField(max_length=64)
    uid = models.CharField(max_length=128)
    version = models.CharField(max_length=32)
    epoch = models.BigIntegerField(default=0)
    # set when a snapshot of the user is first made: from then on their deleted rows are logged
    deletions_logged = models.BooleanField(default=False)

    class Meta:
        db_table = "search_localvectorversion"
        constraints = [models.UniqueConstraint(fields=["namespace", "uid"], name="local_vector_version")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.uid}: {self.version}"


class LocalVectorDeletion(models.Model):
    """A row of `LocalVector` deleted (`row`: its id), in the order deleted: what a process that
    holds a snapshot of the user's vectors reads to leave it out. Kept only for users with a snapshot
    (`LocalVectorVersion.deletions_logged`), until their next snapshot holds it."""

    namespace = models.CharField(max_length=64)
    uid = models.CharField(max_length=128)
    row = models.BigIntegerField()

    class Meta:
        db_table = "search_localvectordeletion"
        indexes = [models.Index(fields=["namespace", "uid", "id"], name="local_vector_deletions")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.uid}: {self.row}"


class VectorIndex(models.Model):
    """An index version: the vectors of one embedder (model, dimension) and chunking in one store
    and namespace; the model guard refuses a query or upsert of another model.

    A row made by the first write (`check_model(record=True)`) follows the settings (`embedder`
    blank: EMBEDDER, VECTOR_STORE, VECTOR_NAMESPACE). `index_build` makes versions that name their
    own embedder, dimensions, store and namespace (`memories/index_versions.py`); once one is
    active it decides, for every process, what searches read and the pipeline writes first, and
    every version not dropped is written too (double write), so that a build is complete when it
    ends and a rollback finds every memory. `chunking` notes what its vectors were cut from
    (`memories.vectors.chunking`; empty: before it was noted)."""

    class State(models.TextChoices):
        BUILDING = "building"  # being filled by `index_build` (and written to by the pipeline)
        READY = "ready"  # built, never active
        ACTIVE = "active"  # what searches read
        RETIRED = "retired"  # was active; kept up to date for a rollback until dropped

    store = models.CharField(max_length=300, unique=True)  # e.g. "local/ns1", "pinecone/<host>/ns1"
    model = models.CharField(max_length=128)
    dim = models.PositiveIntegerField()
    chunking = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The version's own parts ("": follow the settings, a row made by the first write).
    embedder = models.CharField(max_length=200, blank=True)  # an EMBEDDERS name or a dotted path
    dimensions = models.PositiveIntegerField(null=True, blank=True)  # asked of the embedder (openai)
    vector_store = models.CharField(max_length=32, blank=True)  # local or pinecone
    host = models.CharField(max_length=300, blank=True)  # Pinecone's index host
    namespace = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    # The build: memories to embed, done so far, and the last memory id done (where a resume starts).
    memories_total = models.PositiveIntegerField(default=0)
    memories_done = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "search_vectorindex"
        verbose_name_plural = "vector indexes"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=models.Q(state="active") & ~models.Q(embedder=""),
                name="one_active_index_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.store}: {self.model} ({self.dim})"

    @property
    def name(self) -> str:
        """The version's name, as commands and searches take it."""
        return f"v{self.id}"

    @property
    def managed(self) -> bool:
        """Whether the version names its own parts (made or adopted by `index_build`)."""
        return bool(self.embedder)

    @property
    def progress(self) -> float | None:
        """The build's share done (0..1); None before a build counted its memories."""
        return min(1.0, self.memories_done / self.memories_total) if self.memories_total else None


class ReconcileRun(models.Model):
    """One comparison of the database's expected vectors with the vector store
    (`memories.reconcile`): what it checked, what it found (counts, and the first findings of each
    kind) and, with `repair`, what it put right. Started by an admin, the `reconcile` command or
    the periodic task."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        DASHBOARD = "dashboard"
        API = "api"
        COMMAND = "command"
        SCHEDULE = "schedule"

    STALE_AFTER = timedelta(minutes=15)  # a run under way without progress this long has lost its worker

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)  # the running task's heartbeat
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_by = models.CharField(max_length=150, blank=True)  # the dashboard user or OS user; "" for the schedule
    uid = models.CharField(max_length=128, blank=True)  # "": every user
    repair = models.BooleanField(default=False)
    store = models.CharField(max_length=300, blank=True)  # e.g. "local/ns1"
    progress = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    memories_checked = models.PositiveIntegerField(default=0)
    vectors_checked = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)  # expected vectors the store lacks
    orphaned = models.PositiveIntegerField(default=0)  # store vectors of deleted, failed or unknown memories
    mismatched = models.PositiveIntegerField(default=0)  # store vectors whose metadata differs
    repaired = models.PositiveIntegerField(default=0)  # vectors upserted again from the database
    removed = models.PositiveIntegerField(default=0)  # orphans deleted from the store
    findings = models.JSONField(default=list)  # the first findings of each kind: [{kind, vector_id, ...}]

    class Meta:
        verbose_name = "reconciliation run"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"reconciliation #{self.id} of {self.uid or 'every user'} ({self.status})"

    @property
    def found(self) -> int:
        return self.missing + self.orphaned + self.mismatched
