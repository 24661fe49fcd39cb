"""Online experiments: which arm a user's searches go to, and team-draft interleaving.

- **Assignment** is sticky per uid: a stable hash of the experiment's id and the uid, read as a
  number in [0, 1), takes the user in when it is under the traffic share (and the uid is on the
  allow-list, when there is one); a second hash picks the arm, half and half. No state is kept:
  every process (web, worker) assigns a user alike, and again after a restart.
- **Team-draft interleaving** (Radlinski, Kurup and Joachims, 2008): the arm with fewer picks so far
  (a coin when even) adds its best result not yet in the list; each result is credited to the arm
  that picked it. A result judged relevant, or used, is a point for its arm; the arm with more
  points in a search wins it.

What the searches say: search/experiment_results.py.
"""

import hashlib
import random
from collections.abc import Callable, Sequence

from omi_memory.errors import ValidationFailed

from .models import Experiment
from .strategies import (
    DEFAULT_HALF_LIFE_DAYS,
    FUSIONS,
    MAX_HALF_LIFE_DAYS,
    MIN_HALF_LIFE_DAYS,
    STRATEGIES,
    resolve_params,
)

ARMS = ("a", "b")
INTERLEAVED = "interleaved"  # SearchLog.arm of an interleaved search (each result names its arm)
# An arm's search parameters besides its strategy's own numeric ones (search.strategies.PARAMS);
# never k, filters or the relevance floor, which stay the caller's.
SEARCH_PARAMS = {"half_life_days", "fusion"}


# Arms -------------------------------------------------------------------------------------------


def clean_arm(name: str, arm: dict) -> dict:
    """An arm as stored: {"strategy", "params", "profile", "index_version"}, or ValidationFailed
    naming the arm and what is wrong with it. (That its profile and index version exist is the
    service's check.)"""
    strategy, params = arm.get("strategy"), arm.get("params") or {}
    version, profile = arm.get("index_version") or "", arm.get("profile") or ""
    problems = []
    if strategy not in STRATEGIES:
        problems.append(f"strategy must be one of {', '.join(STRATEGIES)}")
    if not isinstance(params, dict):
        problems.append("params must be an object")
        params = {}
    half_life = params.get("half_life_days")
    if half_life is not None and (
        isinstance(half_life, bool)
        or not isinstance(half_life, int | float)
        or not MIN_HALF_LIFE_DAYS <= half_life <= MAX_HALF_LIFE_DAYS
    ):
        problems.append(f"half_life_days must be a number from {MIN_HALF_LIFE_DAYS:g} to {MAX_HALF_LIFE_DAYS:g}")
    if "fusion" in params and params["fusion"] not in FUSIONS:
        problems.append(f"fusion must be one of {', '.join(FUSIONS)}")
    if strategy in STRATEGIES:
        try:
            resolve_params(strategy, _strategy_params(params))
        except ValidationFailed as exc:
            problems.append(exc.message)
    if problems:
        raise ValidationFailed(f"arm {name.upper()}: {'; '.join(problems)}", details={"arm": name})
    return {"strategy": strategy, "params": params, "profile": profile, "index_version": version}


def _strategy_params(params: dict) -> dict:
    return {key: value for key, value in params.items() if key not in SEARCH_PARAMS}


def arm_search_kwargs(arm: dict) -> dict:
    """What an arm asks of `search_memories`: its strategy, parameters and profile (none named: the
    strategy's active one, as any search), defaults for the rest."""
    params = arm.get("params") or {}
    return {
        "strategy": arm["strategy"],
        "half_life_days": params.get("half_life_days", DEFAULT_HALF_LIFE_DAYS),
        "fusion": params.get("fusion", "sum"),
        "params": _strategy_params(params),
        "profile": arm.get("profile") or True,
        "index_version": arm.get("index_version") or None,
    }


def arm_label(arm: dict) -> str:
    """An arm in a few words: `hybrid (fusion=rrf)`."""
    params = ", ".join(f"{key}={value}" for key, value in sorted((arm.get("params") or {}).items()))
    profile = f", profile {arm['profile']}" if arm.get("profile") else ""
    version = f" on index {arm['index_version']}" if arm.get("index_version") else ""
    return f"{arm['strategy']}{f' ({params})' if params else ''}{profile}{version}"


# Assignment -------------------------------------------------------------------------------------


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) for these parts (the same in every process and release)."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assigned_arm(experiment: Experiment, uid: str) -> str | None:
    """The arm of `uid` in `experiment` ("a", "b", or "interleaved" in interleave mode), or None
    for a user it does not take in. Sticky: the same for the same experiment and uid, always."""
    if experiment.uids and uid not in experiment.uids:
        return None
    if _unit(experiment.id, uid, "traffic") >= experiment.traffic_share:
        return None
    if experiment.mode == Experiment.Mode.INTERLEAVE:
        return INTERLEAVED
    return "a" if _unit(experiment.id, uid, "arm") < 0.5 else "b"


def interleave_coin(experiment: Experiment, uid: str, queries: Sequence[str]) -> Callable[[], bool]:
    """The coin of one search's team draft (True: arm A picks first in an even round); seeded by
    the experiment, the user and the query, so the same search shows the same list again."""
    rng = random.Random(f"{experiment.id}:{uid}:{chr(31).join(queries)}")
    return lambda: rng.random() < 0.5


# Team-draft interleaving --------------------------------------------------------------------------


def team_draft(ranking_a: Sequence, ranking_b: Sequence, *, k: int, coin: Callable[[], bool]) -> list[tuple]:
    """Both rankings in one list of at most `k`: [(item, "a" | "b")], each item credited to the arm
    that picked it. The arm with fewer picks picks next (on a tie, arm A when `coin()` is true),
    its best item not yet in the list; once one arm has nothing left to add, the other goes on."""
    merged: list[tuple] = []
    seen: set = set()
    picks = {"a": 0, "b": 0}
    rest = {"a": list(ranking_a), "b": list(ranking_b)}

    def next_of(arm: str):
        while rest[arm] and rest[arm][0] in seen:
            rest[arm].pop(0)
        return rest[arm][0] if rest[arm] else None

    while len(merged) < k:
        left = {arm: next_of(arm) is not None for arm in ARMS}
        if not any(left.values()):
            break
        if not all(left.values()):
            arm = "a" if left["a"] else "b"
        elif picks["a"] != picks["b"]:
            arm = "a" if picks["a"] < picks["b"] else "b"
        else:
            arm = "a" if coin() else "b"
        item = next_of(arm)
        merged.append((item, arm))
        seen.add(item)
        picks[arm] += 1
    return merged


def interleaved_outcome(credited: Sequence[tuple], signals: set) -> int:
    """One interleaved search: +1 when arm B got more of the results with a signal (judged relevant
    or used) than arm A, -1 when A did, 0 for a tie. `credited`: [(item, arm)] as shown."""
    points = {"a": 0, "b": 0}
    for item, arm in credited:
        if item in signals:
            points[arm] += 1
    return (points["b"] > points["a"]) - (points["a"] > points["b"])
