"""The apps' sweepers, for `manage.py sweep`: each app registers its own (in its AppConfig.ready),
which sends again the work of that app whose message or worker was lost. Celery beat sends each
app's sweep task on its own; without Redis (tasks in-process), `manage.py sweep --every` runs them
all in turn, as `make run` does, and the command needs to know none of them."""

from collections.abc import Callable

# name -> a sweep: how many things it sent again or gave up, and a line that says so
_SWEEPS: dict[str, Callable[[], tuple[int, str]]] = {}


def sweep_register(name: str, sweep: Callable[[], tuple[int, str]]) -> None:
    _SWEEPS[name] = sweep


def sweep_all() -> list[tuple[int, str]]:
    """Every registered sweep, in the order the apps registered them."""
    return [sweep() for sweep in _SWEEPS.values()]
