import json as jsonlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from omi_memory.errors import ApplicationError
from search.evaluation import METRICS, evaluate_dataset, feedback_metrics
from search.selectors import profile_get
from search.strategies import STRATEGIES


class Command(BaseCommand):
    help = (
        "Score search strategies on a labelled data set (a folder with memories.jsonl and queries.jsonl, "
        "shaped like LoCoMo's): recall@1/5/10, MRR and nDCG@10, overall and per category; then the same "
        "metrics from analysts' judgments. Each run is stored for the dashboard, with the parameters and profile "
        "it used (a strategy's active profile, unless --profile or --defaults says otherwise)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", type=Path, required=True)
        parser.add_argument("--split", choices=["dev", "holdout", "all"], default="dev")
        parser.add_argument("--strategy", default="all", help=f"one of {', '.join(STRATEGIES)}, or all")
        parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
        profile = parser.add_mutually_exclusive_group()
        profile.add_argument("--profile", help="a parameter profile's name: its strategy with its parameters")
        profile.add_argument("--defaults", action="store_true", help="every strategy with its default parameters")
        parser.add_argument(
            "--index-version", help="with that index version's embedder and chunking (e.g. v2; default: the active)"
        )

    def handle(
        self,
        *args,
        dataset: Path,
        split: str,
        strategy: str,
        json: bool,
        profile: str | None,
        defaults: bool,
        index_version: str | None,
        **options,
    ):
        if not (dataset / "memories.jsonl").exists() or not (dataset / "queries.jsonl").exists():
            raise CommandError(f"{dataset} needs memories.jsonl and queries.jsonl")
        if strategy != "all" and strategy not in STRATEGIES:
            raise CommandError(f"--strategy must be one of {', '.join(STRATEGIES)} or all")
        names = list(STRATEGIES) if strategy == "all" else [strategy]
        if profile:
            try:
                profile_strategy = profile_get(name=profile).strategy
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            if strategy not in ("all", profile_strategy):
                raise CommandError(f"profile {profile} is for strategy {profile_strategy}, not {strategy}")
            strategy, names = profile_strategy, [profile_strategy]
        progress = (
            (lambda iterable, **kwargs: iterable)
            if json
            else (lambda iterable, **kwargs: tqdm(iterable, file=self.stderr._out, mininterval=2, **kwargs))
        )
        try:
            results = evaluate_dataset(
                directory=dataset,
                split=split,
                strategies=names,
                profile=profile or not defaults,
                index_version=index_version,
                progress=progress,
            )
        except ApplicationError as exc:  # an unknown version, or one still being built
            raise CommandError(str(exc)) from exc
        if json:
            payload = results if strategy == "all" else results[strategy]
            self.stdout.write(_json(payload))
            return
        self.stdout.write(f"\n{dataset} ({split}), {results[names[0]]['queries']} questions")
        self._table({name: results[name] for name in names}, with_categories=True)
        judged = feedback_metrics()
        if judged:
            self.stdout.write("\nfrom analysts' judgments")
            self._table(judged, with_categories=False)

    def _table(self, results: dict, *, with_categories: bool) -> None:
        header = f"{'strategy':24} {'queries':>7} " + " ".join(f"{m:>9}" for m in METRICS)
        self.stdout.write(header)
        for name, metrics in results.items():
            self._row(name, metrics)
            if with_categories:
                for category, values in metrics.get("by_category", {}).items():
                    self._row(f"  {category}", values)

    def _row(self, label: str, metrics: dict) -> None:
        values = " ".join(f"{metrics[m]:9.3f}" if m in metrics else f"{'-':>9}" for m in METRICS)
        extra = f"  ({metrics['judgments']} judgments)" if "judgments" in metrics else ""
        self.stdout.write(f"{label:24} {metrics.get('queries', 0):7d} {values}{extra}")


def _json(payload) -> str:
    return jsonlib.dumps(payload, indent=2)
