"""What an online experiment costs a search: latency with none running, under A/B, interleaved.

    .venv/bin/python bench/experiments.py [--rounds 5] [--database-url URL]

Loads the demo conversations through the pipeline once (a second run reuses them), then runs the
same searches (each demo user with each query, `--rounds` times, k=5, the strategy left to the
service) three ways: no experiment running; an A/B experiment taking every user (arms semantic and
hybrid); an interleaved one with the same arms (both ranked, then merged by team draft). It
prints p50/p95 per way, and what finding the user's arm alone takes. The experiments it makes,
and their searches, are removed at the end. Nothing here is a pass/fail test.
"""

import argparse
import json
import time

from common import ROOT, database_label, machine, percentiles, setup_django

QUERIES = [
    "what did the dentist say",
    "the budget for next month",
    "when is the deploy",
    "birthday party plans",
    "the trip itinerary",
]
ARMS = {
    "arm_a": {"strategy": "semantic", "params": {}, "profile": "", "index_version": ""},
    "arm_b": {"strategy": "hybrid", "params": {}, "profile": "", "index_version": ""},
}


def load_demo() -> list[str]:
    from memories.models import Memory
    from memories.processing import memory_process_many
    from memories.services import memory_create_many

    if not Memory.objects.filter(status="indexed").exists():
        rows = [json.loads(line) for line in (ROOT / "memories/demo/demo_memories.jsonl").read_text().splitlines()]
        created = memory_create_many(
            items=[{"uid": row["uid"], "transcript": row["transcript"]} for row in rows], enqueue=False
        )
        memory_process_many(memory_ids=[m.id for m in created])
    return sorted(set(Memory.objects.filter(status="indexed").values_list("uid", flat=True)))


def timed_searches(uids: list[str], rounds: int) -> list[float]:
    from search.services import search_memories

    samples = []
    for _ in range(rounds):
        for uid in uids:
            for query in QUERIES:
                started = time.perf_counter()
                search_memories(uid=uid, queries=[query], k=5, strategy=None)
                samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = setup_django(args.database_url)

    from search.models import Experiment, SearchLog
    from search.selectors import experiment_for_search

    uids = load_demo()
    print(f"{machine()}; {database_label(url)}; {len(uids)} users, {len(QUERIES)} queries, {args.rounds} rounds")
    timed_searches(uids[:1], 1)  # the model loaded, the caches warm
    made = []
    try:
        results = {"no experiment": percentiles(timed_searches(uids, args.rounds))}
        for mode in ("ab", "interleave"):
            experiment = Experiment.objects.create(
                name=f"bench {mode}", mode=mode, traffic_share=1.0, state="running", **ARMS
            )
            made.append(experiment.id)
            results[mode] = percentiles(timed_searches(uids, args.rounds))
            taken = SearchLog.objects.filter(experiment=experiment).count()
            lookups = []
            for uid in uids * 50:
                started = time.perf_counter()
                experiment_for_search(uid=uid)
                lookups.append((time.perf_counter() - started) * 1000)
            results[f"{mode}: arm lookup alone"] = percentiles(lookups)
            Experiment.objects.filter(id=experiment.id).update(state="ended")
            print(f"{mode}: {taken} searches taken by the experiment")
    finally:
        SearchLog.objects.filter(experiment_id__in=made).delete()
        Experiment.objects.filter(id__in=made).delete()
    print(f"{'':28} {'n':>5} {'p50 ms':>8} {'p95 ms':>8}")
    for name, figures in results.items():
        print(f"{name:28} {figures['n']:5d} {figures['p50']:8.2f} {figures['p95']:8.2f}")


if __name__ == "__main__":
    main()
