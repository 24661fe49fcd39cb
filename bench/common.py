"""Shared set-up for the benchmarks: a database of their own, Django, percentiles, the machine."""

import http.client
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
# The searches' questions: each of QUESTIONS about each of TOPICS (`queries`)
QUESTIONS = [
    "what did we decide about",
    "when is the",
    "how much did we pay for",
    "who mentioned the",
    "remind me what was said about",
    "where are we meeting for",
    "what did the doctor say about",
    "what was the plan for",
    "did anyone follow up on",
    "what were the numbers for",
]
TOPICS = [
    "the dentist appointment",
    "the kitchen renovation",
    "the quarterly budget",
    "the product launch",
    "my sister's wedding",
    "the car repair",
    "the flight to Lisbon",
    "the hiring interview",
    "the school recital",
    "the mortgage rate",
    "the book club novel",
    "the marathon training",
    "the tax deadline",
    "the birthday dinner",
    "the garden beds",
    "the team offsite",
    "the insurance claim",
    "the new apartment",
    "the client contract",
    "the sleep study",
    "the piano lessons",
    "the conference talk",
    "the daycare pickup",
    "the farmers market",
    "the camping trip",
    "the server outage",
    "the spanish class",
    "the knee injury",
    "the wine tasting",
    "the moving truck",
]


def setup_django(database_url: str | None, redis_url: str | None = None, root: Path = ROOT) -> str:
    """Point Django at the benchmark's database (never the dev one) and set it up, with the code of
    `root` (another revision's tree, to compare); returns the URL."""
    OUT.mkdir(parents=True, exist_ok=True)
    url = database_url or os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{OUT / 'bench.sqlite3'}"
    os.environ["DATABASE_URL"] = url
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("TORCH_THREADS", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omi_memory.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # A key of the run's own (the app refuses to start without one), and no throttle on the API the
    # benchmarks hammer: their servers inherit both.
    os.environ.setdefault("SECRET_KEY", f"bench-{secrets.token_urlsafe(48)}")
    for throttle in ("THROTTLE_SEARCH", "THROTTLE_WRITES", "THROTTLE_READS"):
        os.environ.setdefault(throttle, "off")
    sys.path.insert(0, str(root))
    import django

    django.setup()
    from django.core.management import call_command

    if url.startswith("postgres"):
        _ensure_postgres_database(url)
    call_command("migrate", verbosity=0)
    return url


def _ensure_postgres_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "mean": statistics.fmean(ordered),
    }


def machine() -> str:
    cpus = os.cpu_count()
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = 0
    return f"{platform.machine()}, {cpus} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"


def database_label(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgres") else "SQLite"


def start_web(port: int, *, threads: int, env: dict | None = None) -> subprocess.Popen:
    """One gunicorn worker of the app on 127.0.0.1:`port` (warnings only, `env`: the environment,
    default this process's), returned once it answers; stop it with os.killpg."""
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "omi_memory.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        + ["--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT,
        env={**(os.environ if env is None else env), "LOG_LEVEL": "WARNING"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz")
            return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the web server did not start")


def queries(count: int, seed: int) -> list[str]:
    """`count` distinct questions in a shuffled order (numbered once every pair is used)."""
    texts = [f"{q} {t}" for q in QUESTIONS for t in TOPICS]
    random.Random(seed).shuffle(texts)
    if count > len(texts):
        texts += [f"{text} ({i})" for i, text in enumerate(texts * (count // len(texts)))]
    return texts[:count]
