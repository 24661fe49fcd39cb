"""The apps' sweepers, for `manage.py sweep`: each app registers its own (in its AppConfig.ready),
which sends again the work of that app whose message or worker was lost. Celery beat sends each
app's sweep task on its own; without Redis (tasks in-process), `manage.py sweep --every` runs them
all in turn, as `make run` does, and the command needs to know none of them."""

from collections.abc import Callable

# what is swept ("memories") -> its sweep: how many it left in each state ({"sent again": 2, ...})
_SWEEPS: dict[str, Callable[[], dict[str, int]]] = {}


def sweep_register(what: str, sweep: Callable[[], dict[str, int]]) -> None:
    _SWEEPS[what] = sweep


def sweep_all() -> list[tuple[int, str]]:
    """Every registered sweep, in the order the apps registered them: how many things it acted on,
    and a line that says what it did."""
    reports = []
    for what, sweep in _SWEEPS.items():
        counts = sweep()
        line = f"{what}: " + ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
        reports.append((sum(counts.values()), line))
    return reports
