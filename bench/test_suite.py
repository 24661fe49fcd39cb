"""The test suite's speed: what `make test` runs, for an old revision and for the current tree.

    .venv/bin/python bench/test_suite.py [--old 5e7c641] [--new REV] [--rounds 1]

Each tree is put in a temporary directory of its own: `git archive` of the old revision, and of
the current tree the files of the working tree as they are (uncommitted changes included), or
`--new REV`. Each runs the commands of its own Makefile's `make test` (read with `make -n`, run
with this repository's .venv; for the old tree that is pytest alone, for the new one ruff,
lint-imports and pytest) the way CI does: on PostgreSQL with a database of its own, Redis with a
db number of its own, REQUIRE_SERVICES=1, pytest with `-q -p no:cacheprovider`. The trees run one
after the other (old, then new, `--rounds` times), never at once; both find the local model's
ONNX export in this repository's var/models, so neither pays for the export.

Prints, per run, the wall seconds, the CPU seconds (user + system of every process the run
started, waited for) and pytest's counts, then the ratios. Each run's output is kept in
bench/out/test_suite-<tree>-<round>.log. The machine's load average is printed before each run:
on a shared machine the figures are only as good as the quiet they had.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import OUT, ROOT, machine

VENV = ROOT / ".venv"
PYTEST_FLAGS = "-q -p no:cacheprovider"
COUNTED = ("passed", "failed", "errors", "error", "skipped", "xfailed", "xpassed")


@dataclass
class Run:
    wall: float
    cpu: float
    counts: dict[str, int]
    failed_command: str | None = None
    commands: list[str] = field(default_factory=list)


def export_revision(revision: str, into: Path) -> None:
    """The files of `revision`, as `git archive` gives them."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as tar:
        tar.write(archive)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as files:
            files.extractall(into, filter="tar")


def copy_working_tree(into: Path) -> None:
    """The files git tracks or would track (not the ignored ones), as they are on disk now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # deleted but not yet staged: gone
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def make_test_commands(tree: Path) -> list[str]:
    """What `make test` runs in `tree` with this .venv (installing is taken as done)."""
    printed = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", str(VENV / "bin" / ".installed"), "test", f"VENV={VENV}"],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    commands = [line.strip() for line in printed.splitlines() if line.strip()]
    return [f"{c} {PYTEST_FLAGS}" if re.search(r"-m pytest\b", c) else c for c in commands]


def ensure_database(url: str) -> None:
    """The run's own PostgreSQL database (pytest-django makes `test_<name>` from it)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def run_tree(tree: Path, env: dict, log: Path) -> Run:
    """The tree's `make test` commands in order, stopping at the first that fails, as make does."""
    commands = make_test_commands(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    failed = None
    with open(log, "w") as out:
        for command in commands:
            out.write(f"$ {command}\n")
            out.flush()
            if subprocess.run(command, shell=True, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT).returncode:
                failed = command
                break
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, pytest_counts(log.read_text()), failed, commands)


def pytest_counts(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line ("372 passed, 1 skipped in 203.1s")."""
    summaries = [line for line in output.splitlines() if re.search(r"\b(passed|failed|error)\b.* in [\d.]+s", line)]
    if not summaries:
        return {}
    return {word: int(n) for n, word in re.findall(rf"(\d+) ({'|'.join(COUNTED)})\b", summaries[-1])}


def outcome(run: Run) -> str:
    counts = ", ".join(f"{n} {word}" for word, n in run.counts.items()) or "no pytest summary"
    return counts + (f"; FAILED: {run.failed_command}" if run.failed_command else "")


def describe(run: Run) -> str:
    return f"{run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU, {outcome(run)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="5e7c641", help="the old revision (default: 5e7c641, before issue 10)")
    parser.add_argument("--new", help="the new revision (default: the working tree as it is)")
    parser.add_argument("--rounds", type=int, default=1, help="old then new, this many times")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="server URL, no db number")
    parser.add_argument("--databases", default="omi_memory_bench_old,omi_memory_bench_new")
    parser.add_argument("--redis-dbs", default="9,10")
    args = parser.parse_args()

    if not (VENV / "bin" / "python").exists():
        sys.exit(f"no {VENV}: run `make install` first")
    OUT.mkdir(parents=True, exist_ok=True)
    new_label = args.new or "working tree"
    trees = {}
    with tempfile.TemporaryDirectory(prefix="test-suite-bench-") as tmp:
        for label, database, redis_db in zip(("old", "new"), args.databases.split(","), args.redis_dbs.split(",")):
            tree = Path(tmp) / label
            tree.mkdir()
            revision = args.old if label == "old" else args.new
            if revision:
                export_revision(revision, tree)
            else:
                copy_working_tree(tree)
            database_url = f"{args.postgres}/{database}"
            ensure_database(database_url)
            env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TEST_REDIS_URL", "DATABASE_URL")}
            env.update(
                DATABASE_URL=database_url,
                TEST_REDIS_URL=f"{args.redis}/{redis_db}",
                REQUIRE_SERVICES="1",
                MODEL_CACHE_DIR=str(ROOT / "var" / "models"),
            )
            trees[label] = (tree, env)

        print(f"machine: {machine()}")
        print(f"old: {args.old}; new: {new_label}; {args.rounds} round(s), one tree at a time")
        runs: dict[str, list[Run]] = {"old": [], "new": []}
        for round_ in range(1, args.rounds + 1):
            for label, (tree, env) in trees.items():
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"round {round_}, {label}: load average {load} ...", flush=True)
                run = run_tree(tree, env, OUT / f"test_suite-{label}-{round_}.log")
                runs[label].append(run)
                print(f"round {round_}, {label}: {describe(run)}", flush=True)

    print()
    for label, revision in (("old", args.old), ("new", new_label)):
        steps = " ; ".join(c.replace(str(VENV) + "/bin/", "") for c in runs[label][0].commands)
        print(f"{label} ({revision}): {steps}")
    wall = {label: statistics.median(r.wall for r in rs) for label, rs in runs.items()}
    cpu = {label: statistics.median(r.cpu for r in rs) for label, rs in runs.items()}
    print(f"{'':5} {'wall s':>8} {'CPU s':>8}")
    for label in ("old", "new"):
        print(f"{label:5} {wall[label]:8.1f} {cpu[label]:8.1f}   {outcome(runs[label][-1])}")
    print(
        f"new / old: wall {wall['new'] / wall['old']:.2f} ({1 - wall['new'] / wall['old']:.0%} less), "
        f"CPU {cpu['new'] / cpu['old']:.2f} ({1 - cpu['new'] / cpu['old']:.0%} less)"
        + (" (medians)" if args.rounds > 1 else "")
    )


if __name__ == "__main__":
    main()
