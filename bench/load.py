"""Load and soak: concurrent API clients against gunicorn and Celery workers on PostgreSQL and Redis.

    .venv/bin/python bench/load.py [--clients 16] [--seconds 300] [--users 20] [--per-user 20]
        [--web-workers 2] [--web-threads 4] [--concurrency 2] [--wait 0] [--soak]
        [--database-url postgres://postgres@127.0.0.1:5432/omi_memory_load]
        [--redis-url redis://127.0.0.1:6379/9] [--json FILE] [--keep-database]

It builds a world of its own and takes it down after, whatever happens (Ctrl-C included):
1. a fresh PostgreSQL database (dropped and made again: its name must end in `_load`, so that the
   dev database can never be the one), migrated; the Redis db emptied; an API key for all users;
2. Celery workers (prefork, `--concurrency`; and beat when the code has a beat schedule), and
   gunicorn (the production command, `omi_memory.wsgi` with scripts/gunicorn.conf.py), bound to
   127.0.0.1, throttles off;
3. `--users` x `--per-user` seed memories created through the API (the batch endpoint) and
   indexed by the workers: the demo conversations (runs of their turns) and short ones;
4. `--clients` locust clients (headless, one process) for `--seconds`: 80% searches (hybrid 70%,
   semantic, time_weighted, multi_query 10% each) of a random seeded user, 20% creates;
5. waits (at most `--drain-timeout`) until no memory is queued or processing.
Then it prints requests, throughput, p50/p95/p99 per endpoint, errors by status, create-to-indexed
p50/p95 (created_at to indexed_at of the memories the clients created), the time the queue took
to drain, memories lost (a create answered 201 whose memory is not `indexed`, nor `failed` with a
reason: must be 0), the reconciliation's findings (must be none) and the resident memory (RSS) of
every process it started at the start and the end of the load. Exit status 1 when memories were
lost, any answer was a 5xx (or none came), or the reconciliation found something.
`--soak` runs 30 minutes and prints the RSS of every process every 5 minutes. All traffic goes to
127.0.0.1; every process started runs in a session of its own and is ended on exit.
"""

import argparse
import contextlib
import ctypes
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import OUT, ROOT, machine, percentiles
from load_texts import transcript

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/omi_memory_load"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
EXPECTED = {"create": 201}  # every other request (a search) expects 200
PR_SET_PDEATHSIG = 1


# The world: a database, a Redis db and processes of the bench's own.


def fresh_database(url: str) -> None:
    """Drop the bench's database (whoever is connected) and make it again."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()


def _die_with_parent() -> None:
    """In the child: be killed if the bench dies without cleaning up (kill -9)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Processes:
    """The processes the bench started, each in a session of its own; all ended on exit."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, role: str, args: list[str], env: dict) -> subprocess.Popen:
        """Start a process; its output goes to `<logs>/<role>.log`."""
        with open(self.logs / f"{role}.log", "wb") as log:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # safe: the bench starts no threads
            )
        self.started.append((role, process))
        return process

    def stop_all(self) -> None:
        for _role, process in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _role, process in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what is left of the group, children included
            process.wait()

    def pids(self) -> list[int]:
        return [pid for _role, process in self.started for pid, _ in descendants(process.pid)]


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, depth) of `root` and every process below it, from /proc."""
    children = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children[ppid].append(int(entry.name))
    found, todo = [], [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        found.append((pid, depth))
        todo += [(child, depth + 1) for child in sorted(children[pid], reverse=True)]
    return found


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_snapshot(processes: Processes) -> dict[int, tuple[str, float]]:
    """pid -> (label, RSS in MB) for every server process the bench started (not locust)."""
    names = {"web": ("gunicorn master", "gunicorn worker"), "worker": ("celery main", "celery pool child")}
    snapshot = {}
    for role, process in processes.started:
        if role == "locust":
            continue
        for pid, depth in descendants(process.pid):
            label = names.get(role, (f"celery {role}", f"celery {role} child"))[min(depth, 1)]
            rss = rss_mb(pid)
            if rss is not None:
                snapshot[pid] = (label, rss)
    return snapshot


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# Database reads (Django, on the bench's database).


def waiting() -> tuple[int, float]:
    """Memories queued or processing, and the age in seconds of the oldest of them."""
    from django.db.models import Min
    from django.utils import timezone

    from memories.models import Memory

    rows = Memory.objects.filter(status__in=[Memory.Status.QUEUED, Memory.Status.PROCESSING])
    summary = rows.aggregate(oldest=Min("created_at"))
    count = rows.count()
    age = (timezone.now() - summary["oldest"]).total_seconds() if summary["oldest"] else 0.0
    return count, age


def outcomes(memory_ids: list[int]) -> dict[int, tuple[str, str, datetime, datetime | None]]:
    from memories.models import Memory

    found = {}
    for start in range(0, len(memory_ids), 1000):
        rows = Memory.objects.filter(id__in=memory_ids[start : start + 1000]).values_list(
            "id", "status", "failure_reason", "created_at", "indexed_at"
        )
        found.update({row[0]: row[1:] for row in rows})
    return found


def reconcile_findings() -> dict[str, list[str]]:
    """What the database expects in the vector store against what the store holds.

    Written before `manage.py reconcile` (issue 12, item 2) was in this tree; the bench runs that
    command too when it exists (`reconcile_command`). Compares the vector ids kept in the database
    (`MemoryVector`) of every indexed memory with the records of the local store (`LocalVector`,
    the bench's store), and each record's metadata with its memory."""
    from django.conf import settings

    from memories.models import LocalVector, Memory, MemoryVector

    expected = {}
    for vector_id, memory_id, uid, created_at, category, source in MemoryVector.objects.filter(
        memory__status=Memory.Status.INDEXED
    ).values_list("vector_id", "memory_id", "memory__uid", "memory__created_at", "memory__category", "memory__source"):
        expected[vector_id] = (uid, str(memory_id), int(created_at.timestamp()), category, source)
    stored = {
        row[0]: row[1:]
        for row in LocalVector.objects.filter(namespace=settings.VECTOR_NAMESPACE).values_list(
            "record_id", "uid", "memory_id", "created_at", "category", "source"
        )
    }
    return {
        "missing": sorted(set(expected) - set(stored)),
        "orphaned": sorted(set(stored) - set(expected)),
        "metadata_differs": sorted(i for i in set(expected) & set(stored) if expected[i] != tuple(stored[i])),
    }


def reconcile_command() -> dict | None:
    """`manage.py reconcile` (without --repair), when the code has it: its exit status (1 when it
    finds something) and its last lines."""
    from django.core.management import get_commands

    if "reconcile" not in get_commands():
        return None
    result = subprocess.run(
        [sys.executable, "manage.py", "reconcile"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    # stdout holds the findings and the summary (stderr, the progress bar)
    return {"exit_status": result.returncode, "output": result.stdout.strip().splitlines()[-5:]}


# HTTP (urllib: the bench's own calls, outside the load).


def post(base: str, key: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def wait_until_serving(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=5)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; see {log}") from None
            time.sleep(0.3)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Progress:
    """One line, rewritten in place on a terminal; a line every `every` seconds otherwise."""

    def __init__(self, every: float = 10):
        self.tty = sys.stdout.isatty()
        self.every = every
        self.last = 0.0

    def show(self, text: str) -> None:
        if self.tty:
            print(f"\r{text:<110}", end="", flush=True)
        elif time.monotonic() - self.last >= self.every:
            print(text, flush=True)
            self.last = time.monotonic()

    def done(self) -> None:
        if self.tty:
            print(flush=True)


# The run.


def seed(base: str, key: str, uids: list[str], per_user: int, timeout: float) -> tuple[int, float]:
    """Create `per_user` memories for each user through the batch endpoint; wait until the workers
    have finished them. Returns (count, seconds)."""
    import random

    rng = random.Random(0)
    now = datetime.now(UTC)
    started = time.monotonic()
    ids = []
    for n, uid in enumerate(uids):
        items = [
            {
                "uid": uid,
                "created_at": (now - timedelta(days=rng.uniform(0, 60))).isoformat(),
                **transcript(rng, f"seed{n}-{i}"),
            }
            for i in range(per_user)
        ]
        ids += [item["id"] for item in post(base, key, "/api/v1/memories/batch", {"memories": items})["items"]]
    progress = Progress()
    while (count := waiting()[0]) > 0:
        elapsed = time.monotonic() - started
        progress.show(f"seeding: {len(ids) - count}/{len(ids)} memories processed, {elapsed:.0f} s")
        if elapsed > timeout:
            progress.done()
            raise SystemExit(f"seeding did not finish within {timeout:.0f} s; see the worker's log")
        time.sleep(1)
    progress.done()
    return len(ids), time.monotonic() - started


def read_requests(path: Path, offset: int = 0) -> tuple[list[tuple], int]:
    """The request lines written from `offset` on (whole lines only), and the new offset."""
    if not path.exists():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].decode().splitlines():
        at, name, status, ms, memory_id = line.split("\t")
        rows.append((float(at), name, int(status), float(ms), int(memory_id) if memory_id else None))
    return rows, offset + end


def run_load(args, base: str, key: str, uids: list[str], processes: Processes, request_log: Path) -> float:
    """The locust clients, for `args.seconds`; each request is a line of `request_log`. Returns the
    mean of the machine's 1-minute load average while they ran."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{ROOT}",
        "LOAD_API_KEY": key,
        "LOAD_UIDS": ",".join(uids),
        "LOAD_LOG": str(request_log),
        "LOAD_SEED": str(args.seed),
        "LOAD_WAIT": str(args.wait),
    }
    locust = processes.start(
        "locust",
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "bench" / "load_locustfile.py"),
            "--headless",
            "--host",
            base,
            "--users",
            str(args.clients),
            "--spawn-rate",
            str(args.clients),
            "--run-time",
            f"{args.seconds}s",
            "--stop-timeout",
            "30",
            "--only-summary",
            "--exit-code-on-error",
            "0",
        ],
        env,
    )
    started = time.monotonic()
    progress = Progress()
    offset, requests, errors, next_rss, loads = 0, 0, 0, args.rss_every, []
    while locust.poll() is None:
        time.sleep(1 if progress.tty else 2)
        elapsed = time.monotonic() - started
        rows, offset = read_requests(request_log, offset)
        requests += len(rows)
        errors += sum(1 for row in rows if row[2] != EXPECTED.get(row[1], 200))
        count, age = waiting()
        loads.append(os.getloadavg()[0])
        progress.show(
            f"load: {elapsed:4.0f}/{args.seconds} s, {requests:,} requests ({requests / elapsed:.1f}/s), "
            f"{errors} errors, {count:,} memories waiting (oldest {age:.0f} s), load average {load_average()}"
        )
        if args.rss_every and elapsed >= next_rss:
            progress.done()
            print_rss_series(processes, f"{elapsed:.0f} s")
            next_rss += args.rss_every
        if elapsed > args.seconds + 120:
            progress.done()
            raise SystemExit("locust did not stop on time")
    progress.done()
    if locust.returncode != 0:
        raise SystemExit(f"locust exited with {locust.returncode}; see {processes.logs / 'locust.log'}")
    return sum(loads) / len(loads) if loads else os.getloadavg()[0]


def drain(timeout: float) -> tuple[float, int, bool]:
    """Wait until no memory is queued or processing: (seconds, backlog at the start, drained)."""
    started = time.monotonic()
    backlog, _ = waiting()
    progress = Progress()
    while (count := waiting())[0] > 0:
        elapsed = time.monotonic() - started
        rate = (backlog - count[0]) / elapsed if elapsed else 0
        progress.show(
            f"draining: {count[0]:,} memories waiting (oldest {count[1]:.0f} s), {rate:.2f}/s, {elapsed:.0f} s"
        )
        if elapsed > timeout:
            progress.done()
            return elapsed, backlog, False
        time.sleep(1)
    progress.done()
    return time.monotonic() - started, backlog, True


def print_rss_series(processes: Processes, when: str) -> None:
    snapshot = rss_snapshot(processes)
    cells = ", ".join(f"{label} {pid} {rss:.0f}" for pid, (label, rss) in sorted(snapshot.items()))
    print(f"RSS at {when} (MB): {cells}", flush=True)


def summarize(rows: list[tuple], acked: list[int], found: dict) -> dict:
    """The figures of the load (`rows`: the request lines) and of the memories it created."""
    ok = lambda row: row[2] == EXPECTED.get(row[1], 200)  # noqa: E731
    # the clients' own window: from the first request sent to the last answer
    seconds = max(at for at, *_ in rows) - min(at - ms / 1000 for at, _, _, ms, _ in rows) if rows else 0.0
    groups = defaultdict(list)
    for row in rows:
        for group in (row[1], "search (all)" if row[1].startswith("search") else None, "all"):
            if group:
                groups[group].append(row)
    endpoints = {}
    for name in sorted(groups, key=lambda name: (name == "all", not name.startswith("create"), name)):
        figures = percentiles([row[3] for row in groups[name]])
        endpoints[name] = {
            "requests": len(groups[name]),
            "per_second": round(len(groups[name]) / seconds, 1),
            **{q: round(figures[q], 1) for q in ("p50", "p95", "p99")},
            "errors": sum(1 for row in groups[name] if not ok(row)),
        }
    statuses = Counter(row[2] for row in rows if not ok(row))
    delays = [
        (indexed_at - created_at).total_seconds()
        for status, _reason, created_at, indexed_at in found.values()
        if status == "indexed" and indexed_at
    ]
    lost = [
        memory_id
        for memory_id in acked
        if memory_id not in found
        or not (found[memory_id][0] == "indexed" or (found[memory_id][0] == "failed" and found[memory_id][1]))
    ]
    failed = [memory_id for memory_id in acked if memory_id in found and found[memory_id][0] == "failed"]
    return {
        "requests": len(rows),
        "seconds": round(seconds, 1),
        "per_second": round(len(rows) / seconds, 1) if seconds else 0.0,
        "endpoints": endpoints,
        "errors_by_status": {str(status): n for status, n in sorted(statuses.items())},
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "created": len(acked),
        "create_to_indexed_s": {q: round(v, 1) for q, v in percentiles(delays).items()} if delays else None,
        "failed_with_reason": len(failed),
        "lost": len(lost),
        "lost_ids": lost[:50],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, help="length of the load (default 300; 1800 with --soak)")
    parser.add_argument("--soak", action="store_true", help="30 minutes, the RSS of every process every 5 minutes")
    parser.add_argument("--rss-every", type=int, help="seconds between RSS lines during the load (0: none)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=20, help="seed memories per user")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (prefork)")
    parser.add_argument("--wait", type=float, default=0, help="seconds a client pauses between requests")
    parser.add_argument("--seed", type=int, default=1, help="of the clients' random choices")
    parser.add_argument("--seed-timeout", type=float, default=1800)
    parser.add_argument("--drain-timeout", type=float, default=3600)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--logs", type=Path, default=OUT / "load", help="the processes' logs and the requests")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for a look afterwards")
    args = parser.parse_args()
    args.seconds = args.seconds or (1800 if args.soak else 300)
    if args.rss_every is None:
        args.rss_every = 300 if args.soak else 0
    if not args.database_url.startswith("postgres"):
        parser.error("--database-url: PostgreSQL only (the processes share the database)")
    if not args.database_url.rsplit("/", 1)[1].endswith("_load"):
        parser.error("--database-url: the bench drops and makes its database again; its name must end in _load")

    # Ctrl-C raises KeyboardInterrupt; a TERM or HUP does the same, so that `finally` cleans up.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    args.logs.mkdir(parents=True, exist_ok=True)
    processes = Processes(args.logs)
    try:
        return run(args, processes)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process the bench started", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        flush_redis(args.redis_url)
        if not args.keep_database:
            drop_database(args.database_url)


def run(args, processes: Processes) -> int:
    started_at = datetime.now(UTC)
    load_at_start = load_average()
    print(f"machine: {machine()}; load average {load_at_start}", flush=True)
    fresh_database(args.database_url)
    flush_redis(args.redis_url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "omi_memory.settings"
    os.environ["TORCH_THREADS"] = "1"
    request_log = args.logs / "requests.tsv"
    request_log.unlink(missing_ok=True)
    from common import setup_django

    setup_django(args.database_url, args.redis_url)
    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_api_key", name="load bench", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]

    from omi_memory.celery import app

    env = dict(os.environ)
    celery = [sys.executable, "-m", "celery", "-A", "omi_memory"]
    processes.start(
        "worker", [*celery, "worker", "--pool", "prefork", "--concurrency", str(args.concurrency), "-l", "info"], env
    )
    beat = bool(app.conf.beat_schedule)
    if beat:
        processes.start(
            "beat", [*celery, "beat", "-l", "info", "--schedule", str(args.logs / "celerybeat-schedule")], env
        )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = processes.start(
        "web",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "omi_memory.wsgi",
            "--config",
            "scripts/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--threads",
            str(args.web_threads),
            "--timeout",
            "300",
        ],
        env,
    )
    wait_until_serving(base, web, args.logs / "web.log")
    world = (
        f"PostgreSQL {args.database_url.rsplit('/', 1)[1]}, Redis {args.redis_url}; gunicorn {args.web_workers} "
        f"workers x {args.web_threads} threads; Celery prefork concurrency {args.concurrency}; "
        f"beat {'on' if beat else 'off (no schedule in the code)'}"
    )
    print(f"world: {world}; logs in {args.logs}", flush=True)

    uids = [f"load-{n:02d}" for n in range(args.users)]
    seeded, seed_seconds = seed(base, key, uids, args.per_user, args.seed_timeout)
    print(f"seed: {seeded} memories of {args.users} users indexed in {seed_seconds:.0f} s", flush=True)

    rss_start = rss_snapshot(processes)
    load_during = run_load(args, base, key, uids, processes, request_log)
    drain_seconds, backlog, drained = drain(args.drain_timeout)
    rss_end = rss_snapshot(processes)
    load_at_end = load_average()

    rows, _ = read_requests(request_log)
    acked = [row[4] for row in rows if row[4] is not None]
    figures = summarize(rows, acked, outcomes(acked))
    from memories.models import Memory

    # the seeds are dated in the past 60 days; what the clients created is dated now
    unacknowledged = Memory.objects.filter(uid__in=uids, created_at__gte=started_at).exclude(id__in=acked).count()
    findings = reconcile_findings()
    figures |= {
        "machine": machine(),
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
        "load_average": {"start": load_at_start, "during": round(load_during, 2), "end": load_at_end},
        "world": world,
        "clients": args.clients,
        "wait": args.wait,
        "seeded": seeded,
        "seed_seconds": round(seed_seconds, 1),
        "backlog_at_end_of_load": backlog,
        "drain_seconds": round(drain_seconds, 1),
        "drained": drained,
        "created_unacknowledged": unacknowledged,
        "reconcile": {name: len(ids) for name, ids in findings.items()},
        "reconcile_examples": {name: ids[:5] for name, ids in findings.items() if ids},
        "reconcile_command": reconcile_command(),
        "rss_mb": {
            str(pid): {
                "process": label,
                "start": round(rss_start[pid][1]) if pid in rss_start else None,
                "end": round(rss),
            }
            for pid, (label, rss) in sorted(rss_end.items())
        },
        "pids": processes.pids(),
    }
    report(args, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    problems = [
        f"{figures['lost']} memories lost" if figures["lost"] else "",
        f"{figures['server_errors']} answers 5xx" if figures["server_errors"] else "",
        "no request answered" if not rows else "",
        "the comparison of the database with the store found differences" if any(figures["reconcile"].values()) else "",
        "manage.py reconcile found differences" if (figures["reconcile_command"] or {}).get("exit_status") else "",
    ]
    if problems := [p for p in problems if p]:
        print(f"FAILED: {'; '.join(problems)}")
        return 1
    return 0


def report(args, f: dict) -> None:
    print()
    print(f"command: {f['command']}")
    load = f["load_average"]
    print(
        f"machine: {f['machine']}; load average (1, 5, 15 min) at the start {load['start']}, at the end "
        f"{load['end']}; 1-minute load average during the load: {load['during']:.2f} on average"
    )
    print(f"world: {f['world']}")
    print(
        f"seed: {f['seeded']} memories indexed in {f['seed_seconds']:.0f} s ({f['seeded'] / f['seed_seconds']:.2f}/s)"
    )
    pause = f", {args.wait} s between a client's requests" if args.wait else ", no pause between requests"
    print(f"load: {args.clients} clients for {f['seconds']:.0f} s, 80% search / 20% create{pause}")
    print()
    print(f"{'endpoint':22} {'requests':>9} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, e in f["endpoints"].items():
        print(
            f"{name:22} {e['requests']:9,} {e['per_second']:7.1f} "
            f"{e['p50']:8.0f} {e['p95']:8.0f} {e['p99']:8.0f} {e['errors']:7}"
        )
    print()
    errors = ", ".join(f"{status}: {n}" for status, n in f["errors_by_status"].items()) or "none"
    print(f"errors by status (0: no answer): {errors}")
    c2i = f["create_to_indexed_s"]
    print(
        f"create to indexed: p50 {c2i['p50']:.1f} s, p95 {c2i['p95']:.1f} s over {c2i['n']:,} memories"
        if c2i
        else "create to indexed: no memory created"
    )
    drained = "drained" if f["drained"] else "NOT drained"
    print(
        f"queue: {f['backlog_at_end_of_load']:,} memories waiting when the load stopped, "
        f"{drained} in {f['drain_seconds']:.0f} s"
    )
    print(
        f"memories lost: {f['lost']} of {f['created']:,} created with a 201 (failed with a reason: "
        f"{f['failed_with_reason']}; created but cut off before their answer: {f['created_unacknowledged']})"
    )
    r = f["reconcile"]
    print(
        f"database against the store (the bench's own comparison of MemoryVector ids with the local store's "
        f"records): {r['missing']} missing, {r['orphaned']} orphaned, {r['metadata_differs']} with other metadata"
    )
    command = f["reconcile_command"]
    if command is None:
        print("manage.py reconcile: not in this code")
    else:
        print(f"manage.py reconcile: exit status {command['exit_status']}; " + " / ".join(command["output"]))
    print()
    print(f"{'RSS (MB)':22} {'pid':>8} {'start':>7} {'end':>7}")
    for pid, row in f["rss_mb"].items():
        start = "-" if row["start"] is None else f"{row['start']:.0f}"
        print(f"{row['process']:22} {pid:>8} {start:>7} {row['end']:7.0f}")


if __name__ == "__main__":
    sys.exit(main())
