"""One settings file, driven by the environment.

Every value comes from an environment variable through a small typed helper that fails loudly on
a bad value. With no variables set at all, the service runs on its embedded defaults: SQLite,
tasks in-process, the local model, extractor and vector store.
"""

import ipaddress
import os
from datetime import date, timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_date(name: str, default: str) -> date:
    raw = os.environ.get(name) or default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a date such as 1970-01-01, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in env_str(name, default).split(",") if part.strip()]


def env_networks(name: str, default: str = "") -> list:
    """Networks such as `127.0.0.1/32,10.0.0.0/8` (an address alone is a network of one)."""
    try:
        return [ipaddress.ip_network(part, strict=False) for part in env_list(name, default)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a comma-separated list of networks: {exc}") from None


def env_rate(name: str, default: str) -> str | None:
    """A request rate, `N/s`, `N/min`, `N/hour` or `N/day`; `off` for none."""
    raw = env_str(name, default).strip().lower()
    if raw in ("off", "none", "0"):
        return None
    count, _, period = raw.partition("/")
    if not (count.isdigit() and int(count) > 0 and period in ("s", "sec", "m", "min", "h", "hour", "d", "day")):
        raise ImproperlyConfigured(f"{name} must be a rate like 100/min (per s, min, hour or day) or off, got {raw!r}")
    return f"{int(count)}/{period}"


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off: refusing to start. In production set SECRET_KEY to a long "
            "random value (python -c 'import secrets; print(secrets.token_urlsafe(50))'); on a laptop `make run` "
            "keeps one in var/secret_key (export SECRET_KEY=$(cat var/secret_key)), or set DEBUG=1."
        )
    SECRET_KEY = "django-insecure-omi-memory-debug-only"  # DEBUG only; `check --deploy` flags it
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# HTTPS, from the environment (off on a laptop, which serves plain HTTP; README: production).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
# Behind a proxy that ends TLS: the header it sets to `https`, e.g. X-Forwarded-Proto.
if _proxy_ssl_header := env_str("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Probes and scrapes may come over plain HTTP from inside the network (a health checker, Prometheus).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Reverse proxies in front of the app that append to X-Forwarded-For; 0: the client is REMOTE_ADDR
# (a client's own X-Forwarded-For is never believed). Read by throttles and the sign-in lockout.
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0, minimum=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",
    "axes",
    "csp",
    "memories",
    "search",
    "webhooks",
]

MIDDLEWARE = [
    "omi_memory.metrics.RequestMetricsMiddleware",  # first: it counts and times every answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "omi_memory.middleware.PrivateAnswersMiddleware",
    "omi_memory.middleware.ApiErrorShapeMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "omi_memory.urls"
WSGI_APPLICATION = "omi_memory.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "omi_memory.roles.context",
            ],
        },
    },
]

DATABASES = {
    # Persistent connections, checked before each request or task reuses one: after PostgreSQL
    # restarts (or kills a connection) the web and the workers reconnect by themselves.
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite builds covering indexes without their INCLUDE columns (PostgreSQL reads them from the index alone).
SILENCED_SYSTEM_CHECKS = ["models.W040"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/memories/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Passwords: Django's validators (createsuperuser, the admin, password change and reset).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
# Sign-in lockout (django-axes): LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address lock that pair out for LOGIN_LOCKOUT_MINUTES (0: until an admin unlocks it, in /admin/
# or `manage.py axes_reset_username NAME`). Attempts are rows in the database: every process sees them.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=0)) or None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "omi_memory.accounts.locked_out"
AXES_CLIENT_IP_CALLABLE = "omi_memory.actors.client_ip"
AXES_VERBOSE = False

# Mail: password reset is offered only when mail can be sent (EMAIL_HOST, or an EMAIL_BACKEND).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "omi-memory@localhost")
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST or env_str("EMAIL_BACKEND"))

# Content Security Policy (django-csp): everything from this origin, no inline script or style, no
# eval. Templates follow the rule in templates/base.html.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Requests: a batch of 100 memories of up to MAX_TRANSCRIPT_CHARS each must fit.
MAX_TRANSCRIPT_CHARS = env_int("MAX_TRANSCRIPT_CHARS", 500_000, minimum=1)
MAX_BATCH_SIZE = 100
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)
# Every date and time accepted (API, dashboard, import) lies, in UTC, on or after DATES_FROM and
# before DATES_BEFORE (omi_memory/bounds.py): every database stores it and reads it back.
DATES_FROM = env_date("DATES_FROM", "1970-01-01")
DATES_BEFORE = env_date("DATES_BEFORE", "2100-01-01")
if not date(1, 1, 2) <= DATES_FROM < DATES_BEFORE <= date(9999, 1, 1):
    raise ImproperlyConfigured("DATES_FROM must be before DATES_BEFORE, both between 0001-01-02 and 9999-01-01")

# Tasks: Celery on Redis when REDIS_URL is set, otherwise in-process.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False  # eager retries re-run in place; failures are recorded
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# When the connection to Redis is lost, the tasks at work cannot be acknowledged any more (their
# channel is gone; trying crashes the worker): they are stopped, and their memories, whose
# leases lapse, are sent again by the sweeper. (Celery 6's default.)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# The database is the source of truth, not the broker: a memory whose message is lost (a worker
# killed, Redis flushed or restarted, Redis down when it was created) is sent again by the sweeper
# once its lease has passed (below). So the visibility timeout (after which Redis hands an
# unacknowledged message to another worker) is not what recovery waits for; it must only exceed
# the longest countdown of a retry (PIPELINE_RETRY_BACKOFF_MAX_SECONDS: a worker holds a message
# unacknowledged until its countdown ends) plus the longest task, or a waiting retry would run twice.
BROKER_VISIBILITY_TIMEOUT = 3600
BROKER_CONNECT_TIMEOUT = env_float("BROKER_CONNECT_TIMEOUT", 1.0, minimum=0.1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    # A broker that is down or unreachable costs a request about a second, not a TCP timeout.
    "socket_connect_timeout": BROKER_CONNECT_TIMEOUT,
    "socket_timeout": 5,
}
# Sending a task: tried twice more at most (0.2 s apart) before the failure is logged and the
# sweeper left to send it; then the broker is not tried again for BROKER_RETRY_AFTER_SECONDS.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
BROKER_RETRY_AFTER_SECONDS = env_int("BROKER_RETRY_AFTER_SECONDS", 10, minimum=0)

# The pipeline.
PIPELINE_MAX_RETRIES = env_int("PIPELINE_MAX_RETRIES", 3, minimum=0)
PIPELINE_RETRY_BACKOFF_SECONDS = env_int("PIPELINE_RETRY_BACKOFF_SECONDS", 2, minimum=0)
PIPELINE_RETRY_BACKOFF_MAX_SECONDS = 600  # the longest countdown before a retry
# Leases (memories/processing.py): a worker holds the memories it processes for
# PIPELINE_LEASE_SECONDS and renews that every quarter of it while it works (a heartbeat), however
# long the batch; a message waiting in the broker holds its memory for PIPELINE_QUEUE_LEASE_SECONDS
# (a retry, for its countdown too). Every PIPELINE_SWEEP_SECONDS the sweeper (Celery beat; without
# Redis, `manage.py sweep --every`) sends again the memories whose lease has passed: a dead worker's
# are processed again within PIPELINE_LEASE_SECONDS + PIPELINE_SWEEP_SECONDS (3 minutes by default).
PIPELINE_LEASE_SECONDS = env_int("PIPELINE_LEASE_SECONDS", 120, minimum=1)
PIPELINE_QUEUE_LEASE_SECONDS = env_int("PIPELINE_QUEUE_LEASE_SECONDS", 300, minimum=1)
PIPELINE_SWEEP_SECONDS = env_int("PIPELINE_SWEEP_SECONDS", 60, minimum=1)
# Celery beat (`celery -A omi_memory beat`, one per deployment): the periodic tasks, one entry each.
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "memories.tasks.sweep",
        "schedule": PIPELINE_SWEEP_SECONDS,
        "options": {"expires": PIPELINE_SWEEP_SECONDS},  # sweeps that no worker took in time are dropped
    },
    # Cluster runs and duplicate scans, on the same leases (search/analysis/jobs.py).
    "sweep-jobs": {
        "task": "search.tasks.sweep_jobs",
        "schedule": PIPELINE_SWEEP_SECONDS,
        "options": {"expires": PIPELINE_SWEEP_SECONDS},
    },
}
CHUNK_TOKENS = env_int("CHUNK_TOKENS", 200, minimum=16)
# Snippets: smaller windows (a turn or two) with vectors of their own, for precise matches; 0: none.
SNIPPET_TOKENS = env_int("SNIPPET_TOKENS", 32, minimum=0)
# How snippet (and window) vectors are made: `late`, pooled from the token states of the
# transcript read once by the local model (a remote embedder cannot: it stores windows only);
# `texts`, each embedded as a text of its own (every token read about 2.5 times: the plan before
# late chunking); `none`, no snippets. See memories/vectors.py.
SNIPPET_VECTORS = env_str("SNIPPET_VECTORS", "late")
# Late chunking: the most tokens the model reads at once (up to its 254): whole windows when they
# fit, else each window's snippets packed (less context in a snippet's vector).
LATE_READ_TOKENS = env_int("LATE_READ_TOKENS", 128, minimum=8)
if SNIPPET_VECTORS not in ("late", "texts", "none"):
    raise ImproperlyConfigured(f"SNIPPET_VECTORS must be late, texts or none, got {SNIPPET_VECTORS!r}")

# Reconciliation of the database's vectors with the store (memories/reconcile.py): a periodic run
# every RECONCILE_EVERY_MINUTES (0: none; `manage.py reconcile` and the pipeline page run one any
# time), which repairs what it finds when RECONCILE_REPAIR is on, else reports it (pipeline page, /metrics).
RECONCILE_EVERY_MINUTES = env_int("RECONCILE_EVERY_MINUTES", 60, minimum=0)
RECONCILE_REPAIR = env_bool("RECONCILE_REPAIR", False)
if RECONCILE_EVERY_MINUTES:
    CELERY_BEAT_SCHEDULE["reconcile-vectors"] = {
        "task": "memories.tasks.reconcile_vectors",
        "schedule": timedelta(minutes=RECONCILE_EVERY_MINUTES),
        "options": {"expires": RECONCILE_EVERY_MINUTES * 60},  # a missed run is not run late, twice
    }

# Monitoring: /healthz (alive), /readyz (what the service needs answers), /metrics (Prometheus),
# in memories/monitoring.py and omi_memory/metrics.py. /metrics answers requests from
# METRICS_NETWORKS (default: this host), or bearing `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_NETWORKS = env_networks("METRICS_NETWORKS", "127.0.0.1/32,::1/128")
READYZ_TIMEOUT = env_float("READYZ_TIMEOUT", 3.0, minimum=0.1)  # seconds each readiness check may take
# Several processes: PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself) names one directory
# per host where each process writes its counters; /metrics adds them up. It must exist.
if _metrics_dir := env_str("PROMETHEUS_MULTIPROC_DIR"):
    Path(_metrics_dir).mkdir(parents=True, exist_ok=True)

# Webhooks (webhooks/): signed POSTs of events to the endpoints admins register. An attempt waits
# WEBHOOKS_TIMEOUT seconds at most; a failed one is tried again after WEBHOOKS_RETRY_BACKOFF_SECONDS,
# doubled each time (plus up to a quarter at random; at most the pipeline's longest countdown, which
# the broker's visibility timeout allows), up to WEBHOOKS_MAX_ATTEMPTS attempts in all. An endpoint
# is disabled after WEBHOOKS_DISABLE_AFTER_FAILURES failed attempts in a row, until an admin enables
# it again. Only public addresses receive webhooks unless WEBHOOKS_ALLOW_PRIVATE (webhooks/addresses.py).
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
WEBHOOKS_TIMEOUT = env_float("WEBHOOKS_TIMEOUT", 10.0, minimum=0.1)
WEBHOOKS_MAX_ATTEMPTS = env_int("WEBHOOKS_MAX_ATTEMPTS", 6, minimum=1)
WEBHOOKS_RETRY_BACKOFF_SECONDS = env_float("WEBHOOKS_RETRY_BACKOFF_SECONDS", 30.0, minimum=0.0)
WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS = PIPELINE_RETRY_BACKOFF_MAX_SECONDS
WEBHOOKS_DISABLE_AFTER_FAILURES = env_int("WEBHOOKS_DISABLE_AFTER_FAILURES", 20, minimum=1)
# A pending delivery this long past its time, held by no attempt, lost its message: the sweep
# (Celery beat, with the pipeline's) sends it again. Longer than any countdown.
WEBHOOKS_SWEEP_AFTER_SECONDS = WEBHOOKS_RETRY_BACKOFF_MAX_SECONDS + 300
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.tasks.sweep_webhooks",
    "schedule": PIPELINE_SWEEP_SECONDS,
    "options": {"expires": PIPELINE_SWEEP_SECONDS},
}

# Duplicates: two memories of one user whose vectors' cosine is at least this are a pair to review.
DUPLICATE_THRESHOLD = env_float("DUPLICATE_THRESHOLD", 0.95, minimum=0.0)
# Each process keeps recently checked users' memory vectors (the duplicate check of a new memory,
# neighbours, clusters), up to this size, brought up to date from the database before each use.
MEMORY_MATRIX_CACHE_MB = env_int("MEMORY_MATRIX_CACHE_MB", 256, minimum=0)

# Search: a result whose best vector's cosine with the query is under this is marked weak (see
# search/services.py). 0.35 lies between nonsense and real answers for the local model (MiniLM) on
# LoCoMo dev (docs/benchmarks.md, bench/relevance_floor.py); another embedder needs its own.
SEARCH_RELEVANCE_FLOOR = env_float("SEARCH_RELEVANCE_FLOOR", 0.35, minimum=0.0)
# `manage.py tune` refuses to fit a strategy's parameters to fewer judged queries (with a labelled set:
# judged and labelled queries together) than this.
TUNE_MIN_QUERIES = env_int("TUNE_MIN_QUERIES", 30, minimum=1)
# Search logs are written after the answer by a thread of each process (PostgreSQL; search/search_log.py),
# at most SEARCH_LOG_QUEUE waiting (more: the search writes its own); feedback on a search whose log
# is on its way waits for it up to SEARCH_LOG_WAIT seconds.
SEARCH_LOG_BACKGROUND = env_bool("SEARCH_LOG_BACKGROUND", True)
SEARCH_LOG_QUEUE = env_int("SEARCH_LOG_QUEUE", 1000, minimum=1)
SEARCH_LOG_WAIT = env_float("SEARCH_LOG_WAIT", 2.0, minimum=0.0)
# A user's BM25 index is saved for other processes (search/lexical.py, LexicalSnapshot) by a thread of
# the process, after the search; off: in the search that made it.
LEXICAL_SNAPSHOT_BACKGROUND = env_bool("LEXICAL_SNAPSHOT_BACKGROUND", True)

# Pluggable parts: a name from the registry in search/<part>/__init__.py, or a dotted path.
EXTRACTOR = env_str("EXTRACTOR", "local")
EMBEDDER = env_str("EMBEDDER", "local")
VECTOR_STORE = env_str("VECTOR_STORE", "local")
VECTOR_NAMESPACE = env_str("VECTOR_NAMESPACE", env_str("PINECONE_NAMESPACE", "ns1"))
# Index versions (`index_build`, `index_activate`): each process reads which version is active at
# most this many seconds after it was switched.
INDEX_VERSION_TTL = env_float("INDEX_VERSION_TTL", 1.0, minimum=0.0)
# The local store keeps recently searched users' vectors in each process, up to this size.
LOCAL_STORE_CACHE_MB = env_int("LOCAL_STORE_CACHE_MB", 512, minimum=0)
# A user with this many vectors or more (40,000: about 2,500 memories) gets a snapshot on disk, under
# LOCAL_STORE_DIR, that every process of the host starts from, searched through a graph (0: never).
LOCAL_STORE_SNAPSHOT_ROWS = env_int("LOCAL_STORE_SNAPSHOT_ROWS", 40_000, minimum=0)
LOCAL_STORE_DIR = Path(env_str("LOCAL_STORE_DIR", str(BASE_DIR / "var" / "local-store")))

# The local model: threads are capped, a second busy core makes 2-thread torch much slower.
TORCH_THREADS = env_int("TORCH_THREADS", 1, minimum=1)
# numpy's BLAS (a search's matrix products) gets as many threads as torch: its idle threads spin,
# and on a small machine they take the core another request or worker needs. Read by BLAS when
# numpy is first imported, which in the server and the workers comes after the settings.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, str(TORCH_THREADS))
EMBED_BATCH_SIZE = env_int("EMBED_BATCH_SIZE", 32, minimum=1)
# The local model runs on ONNX Runtime: the vectors torch gives, a query in about a third of the
# time, and no torch in the processes. It is exported to MODEL_CACHE_DIR once, checked against torch.
LOCAL_RUNTIME = env_str("LOCAL_RUNTIME", "onnx")
if LOCAL_RUNTIME not in ("onnx", "torch"):
    raise ImproperlyConfigured(f"LOCAL_RUNTIME must be onnx or torch, got {LOCAL_RUNTIME!r}")
MODEL_CACHE_DIR = Path(env_str("MODEL_CACHE_DIR", str(BASE_DIR / "var" / "models")))

# OpenAI (or any OpenAI-compatible server: Ollama, vLLM, llama.cpp) for extraction and embeddings.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL") or None
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_EMBEDDING_MODEL = env_str("OPENAI_EMBEDDING_MODEL", "text-embedding-3-large")
OPENAI_EMBEDDING_DIMENSIONS = env_int("OPENAI_EMBEDDING_DIMENSIONS", 0, minimum=0) or None
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 60.0, minimum=0.1)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 2, minimum=0)  # the SDK's own, per request
# An answer that is not usable (invalid JSON, wrong schema, refusal, cut off) is asked again this
# many times; then the memory is extracted by the local extractor, and that is recorded on it.
EXTRACT_RETRIES = env_int("EXTRACT_RETRIES", 2, minimum=0)
# Extraction calls in flight at once when many memories are processed together.
EXTRACT_CONCURRENCY = env_int("EXTRACT_CONCURRENCY", 16, minimum=1)

# Pinecone (the data plane of one index, reached by its host).
PINECONE_API_KEY = env_str("PINECONE_API_KEY")
PINECONE_HOST = env_str("PINECONE_HOST")
PINECONE_TIMEOUT = env_float("PINECONE_TIMEOUT", 30.0, minimum=0.1)
PINECONE_UPSERT_CONCURRENCY = env_int("PINECONE_UPSERT_CONCURRENCY", 4, minimum=1)  # batches in flight

# Django's cache: Redis when CACHE_URL (default REDIS_URL) is set, so that every process and host
# shares it (API throttles count there); otherwise this process's memory.
CACHE_URL = env_str("CACHE_URL", REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "omi-memory",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# API throttles per API key (per address for requests without a valid key), by kind of endpoint:
# a rate `N/s|min|hour|day` or `off` (omi_memory/throttles.py).
THROTTLE_SEARCH = env_rate("THROTTLE_SEARCH", "1200/min")
THROTTLE_WRITES = env_rate("THROTTLE_WRITES", "1200/min")
THROTTLE_READS = env_rate("THROTTLE_READS", "2400/min")
THROTTLE_ANON = env_rate("THROTTLE_ANON", "60/min")

# Embeddings cached in Redis, keyed by model, dimension and a hash of the text.
EMBEDDING_CACHE_URL = env_str("EMBEDDING_CACHE_URL", REDIS_URL)
EMBEDDING_CACHE_TTL = env_int("EMBEDDING_CACHE_TTL", 30 * 24 * 3600, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "sentence_transformers": {"level": "WARNING"},
        "bm25s": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "mcp.server.streamable_http": {"level": "WARNING"},  # a line per MCP request otherwise
    },
}
