"""A heavy user's searches right after the host's page cache lost their snapshot: with the snapshot's
files read through in a thread when a process opens it (`Snapshot.warm`), and without (the code
before), each side in a fresh process of its own, taking turns.

    .venv/bin/python bench/cold_snapshot.py --database-url URL [--uid grow-3-20000] [--rounds 2]

Needs root (it drops the page cache: `echo 1 > /proc/sys/vm/drop_caches`) and a growth-bench user
with a snapshot (`bench/search.py --sizes ...`). Per side: the first semantic search of the user
(it opens the snapshot), a pause of `--pause` seconds (a user reading the answer), then 80 more
semantic searches, each a new question (cold query cache): p50 ms of searches 1-20, 21-40, 41-80.
"""

import argparse
import subprocess
import sys
import time

from common import machine, queries, setup_django

SEARCHES = 80


def one_side(args) -> None:
    setup_django(args.database_url)
    import numpy as np

    from memories.parts.embedders import get_embedder
    from memories.parts.vectorstores import snapshots
    from search.services import search_memories

    if args.side == "without":
        snapshots.Snapshot.warm = lambda self: None  # the code before
    texts = queries(SEARCHES + 1, 11)
    get_embedder().embed_query("warm up the model")
    with open("/proc/sys/vm/drop_caches", "w") as drop:
        drop.write("1\n")
    samples = []
    for i, text in enumerate(texts):
        started = time.perf_counter()
        search_memories(uid=args.uid, queries=[f"{text} ({args.side} {args.round})"], k=10, strategy="semantic")
        samples.append((time.perf_counter() - started) * 1000)
        if i == 0:
            time.sleep(args.pause)
    rest = samples[1:]
    p50 = [float(np.percentile(part, 50)) for part in (rest[:20], rest[20:40], rest[40:])]
    print(f"{args.side:8} round {args.round}: first {samples[0]:6.0f}   " + "   ".join(f"{v:6.1f}" for v in p50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--uid", default="grow-3-20000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pause", type=float, default=2.0)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        one_side(args)
        return
    print(f"machine: {machine()}; user {args.uid}; pause after the first search {args.pause:g} s")
    print(f"{'':17} first ms   p50 ms of searches 1-20, 21-40, 41-80")
    for round_ in range(args.rounds):
        for side in ("without", "with"):
            command = [sys.executable, __file__, "--database-url", args.database_url, "--uid", args.uid]
            command += ["--side", side, "--round", str(round_), "--pause", str(args.pause)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            print(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
