"""What an online experiment's searches say so far (search/experiments.py assigns and interleaves).

Per arm: searches, the share judged (or used), metrics from judgments (precision of the judged
results; nDCG@10 with the judged relevant as the relevant ones, a judged search with none relevant
scoring 0), latency p50/p95; 95% percentile-bootstrap intervals of each mean and of the difference
B - A. A difference whose interval contains 0 is not significant yet. Interleaved: each search
with a signal (a result judged relevant, or used) is won by the arm credited with more of them,
or tied; the preference is the mean outcome (+1 B won, -1 A won).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .evaluation import query_metrics
from .experiments import ARMS, INTERLEAVED, arm_label, interleaved_outcome
from .models import Experiment, RelevanceFeedback, ResultUse, SearchLog

RESAMPLES = 2000
LEVEL = 0.95
BOOTSTRAP_CELLS = 2_000_000  # resampled values held at once (memory stays bounded for any sample)


# Bootstrap ---------------------------------------------------------------------------------------


def _resampled_means(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The mean of each of `resamples` samples drawn with replacement, in bounded blocks."""
    n = len(values)
    block = max(1, BOOTSTRAP_CELLS // n)
    means = [
        values[rng.integers(0, n, size=(min(block, resamples - start), n))].mean(axis=1)
        for start in range(0, resamples, block)
    ]
    return np.concatenate(means)


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def bootstrap_interval(
    values: Sequence[float], *, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean of `values` (None under two values)."""
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    return _percentiles(_resampled_means(np.asarray(values, dtype=float), rng, resamples), level)


def bootstrap_difference(
    a: Sequence[float], b: Sequence[float], *, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of mean(b) - mean(a), the samples drawn apart (None when
    either has under two values)."""
    if len(a) < 2 or len(b) < 2:
        return None
    rng = np.random.default_rng(seed)
    means_a = _resampled_means(np.asarray(a, dtype=float), rng, resamples)
    means_b = _resampled_means(np.asarray(b, dtype=float), rng, resamples)
    return _percentiles(means_b - means_a, level)


# Results -----------------------------------------------------------------------------------------


@dataclass
class Estimate:
    """A mean with its 95% interval (None: too few values)."""

    n: int
    mean: float | None
    interval: tuple[float, float] | None

    @classmethod
    def of(cls, values: Sequence[float], *, seed: int) -> "Estimate":
        mean = float(np.mean(values)) if len(values) else None
        return cls(len(values), mean, bootstrap_interval(values, seed=seed))


@dataclass
class Comparison:
    """B - A on one metric: the difference of the means, its 95% interval, and what it says."""

    metric: str
    difference: float | None
    interval: tuple[float, float] | None

    @property
    def significant(self) -> bool:
        return self.interval is not None and not self.interval[0] <= 0 <= self.interval[1]

    @property
    def sentence(self) -> str:
        if self.interval is None:
            return f"{self.metric}: too few judged searches in each arm to compare them yet."
        low, high = self.interval
        span = f"95% interval of B - A: {low:+.3f} to {high:+.3f}"
        if not self.significant:
            return f"{self.metric}: the difference is not significant yet ({span}, which contains 0)."
        better = "B" if low > 0 else "A"
        return f"{self.metric}: arm {better} is better ({span})."


@dataclass
class ArmResults:
    name: str
    arm: dict
    searches: int = 0
    judged: int = 0  # searches with at least one judgment
    used: int = 0  # searches with at least one result used
    precision: Estimate | None = None
    ndcg: Estimate | None = None
    credits: int = 0  # interleave: results with a signal credited to this arm
    latency_p50: float | None = None
    latency_p95: float | None = None

    @property
    def label(self) -> str:
        return arm_label(self.arm)

    @property
    def estimates(self) -> list[Estimate | None]:
        return [self.precision, self.ndcg]

    @property
    def judged_share(self) -> float | None:
        return self.judged / self.searches if self.searches else None


@dataclass
class ExperimentResults:
    experiment: Experiment
    arms: list[ArmResults]
    comparisons: list[Comparison] = field(default_factory=list)
    searches: int = 0
    # interleave: outcomes over the searches with a signal (a judgment or a use)
    wins_a: int = 0
    ties: int = 0
    wins_b: int = 0
    preference: Estimate | None = None  # mean outcome: +1 B won, -1 A won, 0 tie


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def experiment_results(experiment: Experiment, *, seed: int = 0) -> ExperimentResults:
    """What `experiment`'s searches say so far, per arm (see the module's docstring). `seed` fixes
    the bootstrap's draws: the page shows the same intervals at every reload."""
    searches = list(
        SearchLog.objects.filter(experiment=experiment).values_list("id", "arm", "results", "latency_ms", "params")
    )
    ids = [row[0] for row in searches]
    judgments: dict[int, dict[int, bool]] = defaultdict(dict)
    for search_id, memory_id, relevant in RelevanceFeedback.objects.filter(search_id__in=ids).values_list(
        "search_id", "memory_id", "relevant"
    ):
        judgments[search_id][memory_id] = relevant
    uses: dict[int, set[int]] = defaultdict(set)
    for search_id, memory_id in ResultUse.objects.filter(search_id__in=ids).values_list("search_id", "memory_id"):
        uses[search_id].add(memory_id)

    arms = {name: ArmResults(name, experiment.arm(name)) for name in ARMS}
    results = ExperimentResults(experiment, list(arms.values()), searches=len(searches))
    if experiment.mode == Experiment.Mode.INTERLEAVE:
        _interleaved(results, arms, searches, judgments, uses, seed=seed)
    else:
        _ab(results, arms, searches, judgments, uses, seed=seed)
    return results


def _ab(results, arms, searches, judgments, uses, *, seed: int) -> None:
    precision: dict[str, list[float]] = defaultdict(list)
    ndcg: dict[str, list[float]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    for search_id, arm, shown, latency_ms, _params in searches:
        if arm not in arms:
            continue
        result = arms[arm]
        result.searches += 1
        latency[arm].append(latency_ms)
        result.used += bool(uses.get(search_id))
        judged = judgments.get(search_id)
        if not judged:
            continue
        result.judged += 1
        relevant = {memory_id for memory_id, is_relevant in judged.items() if is_relevant}
        precision[arm].append(len(relevant) / len(judged))
        ndcg[arm].append(query_metrics([r["memory_id"] for r in shown], relevant)["ndcg@10"] if relevant else 0.0)
    for name, result in arms.items():
        result.precision = Estimate.of(precision[name], seed=seed)
        result.ndcg = Estimate.of(ndcg[name], seed=seed)
        result.latency_p50, result.latency_p95 = _percentile(latency[name], 50), _percentile(latency[name], 95)
    results.comparisons = [
        _compare("Precision of judged results", precision, seed=seed),
        _compare("nDCG@10", ndcg, seed=seed),
    ]


def _interleaved(results, arms, searches, judgments, uses, *, seed: int) -> None:
    outcomes: list[float] = []
    latency: dict[str, list[float]] = defaultdict(list)
    for search_id, arm, shown, _latency_ms, params in searches:
        if arm != INTERLEAVED:
            continue
        for name, ms in (params.get("arm_ms") or {}).items():
            latency[name].append(ms)
        for result in arms.values():
            result.searches += 1
        judged = judgments.get(search_id, {})
        used = uses.get(search_id, set())
        if judged:
            for result in arms.values():
                result.judged += 1
        if used:
            for result in arms.values():
                result.used += 1
        if not judged and not used:
            continue
        signals = {memory_id for memory_id, is_relevant in judged.items() if is_relevant} | used
        credited = [(r["memory_id"], r.get("arm")) for r in shown]
        for memory_id, arm_name in credited:
            if memory_id in signals and arm_name in arms:
                arms[arm_name].credits += 1
        outcome = interleaved_outcome(credited, signals)
        outcomes.append(outcome)
        results.wins_b += outcome > 0
        results.wins_a += outcome < 0
        results.ties += outcome == 0
    for name, result in arms.items():
        result.latency_p50, result.latency_p95 = _percentile(latency[name], 50), _percentile(latency[name], 95)
    results.preference = Estimate.of(outcomes, seed=seed)
    metric = "Preference (B's wins less A's, per search with feedback)"
    results.comparisons = [Comparison(metric, results.preference.mean, results.preference.interval)]


def _compare(metric: str, values: dict[str, list[float]], *, seed: int) -> Comparison:
    a, b = values["a"], values["b"]
    difference = float(np.mean(b) - np.mean(a)) if a and b else None
    return Comparison(metric, difference, bootstrap_difference(a, b, seed=seed))
