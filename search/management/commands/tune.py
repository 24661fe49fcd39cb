from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from omi_memory.errors import ApplicationError
from search.evaluation import METRICS
from search.strategies import FUSIONS, STRATEGIES
from search.tuning import tune


class Command(BaseCommand):
    help = (
        "Fit a strategy's numeric parameters (hybrid: its signals' weights, snippets per memory, RRF's k) to the "
        "analysts' judgments, plus optionally a labelled data set's dev split, with k-fold cross-validation; "
        "print the metrics before and after on the held-out folds and store the fit as a parameter profile, "
        "inactive until an admin activates it (activate_profile, or the evaluation page)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, choices=STRATEGIES)
        parser.add_argument(
            "--labelled", type=Path, help="a folder shaped like LoCoMo's (memories.jsonl, queries.jsonl): its dev split"
        )
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--fusion", choices=FUSIONS, default="sum", help="the fusion to fit the weights under")
        parser.add_argument("--name", default="", help="the profile's name (default: STRATEGY-tuned-DATE-TIME)")

    def handle(self, *args, strategy: str, labelled: Path | None, folds: int, fusion: str, name: str, **options):
        if labelled and not ((labelled / "memories.jsonl").exists() and (labelled / "queries.jsonl").exists()):
            raise CommandError(f"{labelled} needs memories.jsonl and queries.jsonl")
        try:
            report = tune(
                strategy=strategy,
                folds=folds,
                labelled=labelled,
                fusion=fusion,
                name=name,
                progress=lambda iterable, **kwargs: tqdm(iterable, file=self.stderr._out, mininterval=2, **kwargs),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        queries = f"{report.judged_queries} judged queries ({report.judgments} judgments)"
        if report.labelled_queries:
            queries += f" + {report.labelled_queries} labelled ({report.dataset})"
        before = f"profile {report.before_profile}" if report.before_profile else "the defaults"
        self.stdout.write(f"\n{strategy} ({fusion}), {queries}, {report.folds} folds; before: {before}")
        self.stdout.write("\nheld out, per fold")
        self.stdout.write(f"{'fold':>4} {'train':>6} {'held out':>8}  " + "  ".join(f"{m:>17}" for m in METRICS))
        self.stdout.write(f"{'':20}  " + "  ".join(f"{'before':>8} {'after':>8}" for _ in METRICS))
        for fold in report.per_fold:
            self._row(f"{fold['fold']:>4} {fold['train']:>6} {fold['held_out']:>8}", fold["before"], fold["after"])
        self._row(f"{'all held out':>20}", report.before, report.after)
        for source, values in report.before.get("by_category", {}).items():
            self._row(f"{'  ' + source:>20}", values, report.after["by_category"][source])
        self.stdout.write(f"\n{'parameter':24} {'before':>8} {'profile':>8}")
        for param, value in report.params.items():
            self.stdout.write(f"{param:24} {report.before_params[param]:>8g} {value:>8g}")
        self.stdout.write(
            self.style.SUCCESS(
                f"\nprofile {report.profile.name} stored (inactive; fitted on every query, {report.seconds:.1f} s): "
                f"python manage.py activate_profile {report.profile.name}"
            )
        )

    def _row(self, label: str, before: dict, after: dict) -> None:
        self.stdout.write(f"{label}  " + "  ".join(f"{before[m]:8.4f} {after[m]:8.4f}" for m in METRICS))
