"""What every request reads and an admin seldom changes (the active index version, the active
parameter profiles, the running experiment): each process trusts what it read for INDEX_VERSION_TTL
seconds, so a change made elsewhere is followed within that, and forgets it at once when it
changes one of those rows itself (`forget`)."""

import time
from collections.abc import Callable

from django.conf import settings

_read: dict[tuple, tuple[float, object]] = {}  # key (its kind first) -> (read at, what was read)


def recently_read(key: tuple, read: Callable[[], object]):
    """What `read()` returned for `key` (a tuple, its kind first, e.g. ("profile", "hybrid")) less
    than INDEX_VERSION_TTL seconds ago, or its answer now."""
    found = _read.get(key)
    if found is not None and time.monotonic() - found[0] <= settings.INDEX_VERSION_TTL:
        return found[1]
    value = read()
    _read[key] = (time.monotonic(), value)
    return value


def forget(*kinds: str) -> None:
    """Read the keys of these kinds (none given: every key) again at their next use."""
    for key in list(_read):
        if not kinds or key[0] in kinds:
            _read.pop(key, None)
