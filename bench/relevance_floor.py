"""Where to put the relevance floor: the similarity of real answers against that of nonsense.

    .venv/bin/python bench/relevance_floor.py [--dataset ../shared/data/locomo] [--split dev]
        [--database-url URL]

Runs `manage.py evaluate`'s evaluation of every strategy unchanged (its figures are printed), and
records on the way, for each question, the `similarity` (the best cosine of a memory's vectors with
the question, what the floor compares) of the first relevant memory in the top 10; and, for each
user of the data set, the similarity of the top 10 results of nonsense queries. Then, for floors
from 0.15 to 0.45, the share of those relevant results that a floor would mark weak, against the
share of nonsense results it would.
"""

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, database_label, setup_django

NONSENSE = [
    "xyzzy qwerty",
    "asdf jkl",
    "lorem ipsum dolor",
    "plugh frobnicate",
    "zxcv bnm",
    "qwertyuiop",
    "blorft snazzle",
    "wug dax",
    "florp glimmerwick",
    "hjkl yuiop",
]
FLOORS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "locomo")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = setup_django(args.database_url)

    from search import evaluation
    from search.strategies import STRATEGIES

    questions = {q["question"]: q for q in evaluation.load_dataset(args.dataset, args.split)[1]}
    relevant: dict[str, list[float]] = {}  # strategy -> similarity of the first relevant result in the top 10
    nonsense: list[float] = []
    asked: set[str] = set()
    search = evaluation.search_memories

    def recording(*, uid, queries, strategy, **kwargs):
        result = search(uid=uid, queries=queries, strategy=strategy, **kwargs)
        wanted = set(questions[queries[0]]["relevant_memory_ids"])
        first = next((h for h in result.hits[:10] if h.memory.external_id in wanted), None)
        if first is not None:
            relevant.setdefault(strategy, []).append(first.similarity)
        if uid not in asked:
            asked.add(uid)
            for query in NONSENSE:
                nonsense.extend(h.similarity for h in search(uid=uid, queries=[query], k=10, log=False).hits)
        return result

    evaluation.search_memories = recording
    results = evaluation.evaluate_dataset(directory=args.dataset, split=args.split, strategies=list(STRATEGIES))
    print(f"{args.dataset} ({args.split}) on {database_label(url)}")
    print(f"{'strategy':14} " + " ".join(f"{m:>9}" for m in evaluation.METRICS))
    for name, metrics in results.items():
        print(f"{name:14} " + " ".join(f"{metrics[m]:9.3f}" for m in evaluation.METRICS))
    print("\nsimilarity, percentiles 1 / 5 / 10 / 50 / 90 / 99 (n)")
    for name, values in [*relevant.items(), ("nonsense top 10", nonsense)]:
        cut = np.percentile(values, [1, 5, 10, 50, 90, 99])
        print(f"{name:16} " + " / ".join(f"{v:.3f}" for v in cut) + f" ({len(values)})")
    print("\nshare marked weak: " + " ".join(f"{'floor ' + str(f):>10}" for f in FLOORS))
    for name, values in [*relevant.items(), ("nonsense top 10", nonsense)]:
        shares = [np.mean(np.array(values) < floor) for floor in FLOORS]
        print(f"{name:18} " + " ".join(f"{s:10.3f}" for s in shares))


if __name__ == "__main__":
    main()
