"""Reads about searches. `uid=None` means every user (a key that is not scoped)."""

from omi_memory.errors import NotFound

from .models import SearchLog


def search_log_get(*, search_id: int, uid: str | None = None) -> SearchLog:
    """One logged search, or NotFound: also for another user's search, so ids reveal nothing."""
    searches = SearchLog.objects.filter(id=search_id)
    if uid is not None:
        searches = searches.filter(uid=uid)
    search = searches.first()
    if search is None:
        raise NotFound(f"search {search_id} not found")
    return search
