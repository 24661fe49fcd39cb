"""Who may do what on the dashboard.

Group `admin` (or a superuser) may do everything; group `analyst` may browse, search and judge.
Anyone else who signs in sees a 403. Views say which they need: `@dashboard_view` or `@admin_view`.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

ADMIN = "admin"
ANALYST = "analyst"


def _groups(user) -> set[str]:
    if not hasattr(user, "_dashboard_groups"):
        user._dashboard_groups = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
    return user._dashboard_groups


def is_admin(user) -> bool:
    return user.is_authenticated and user.is_active and (user.is_superuser or ADMIN in _groups(user))


def is_analyst(user) -> bool:
    return user.is_authenticated and user.is_active and (is_admin(user) or ANALYST in _groups(user))


def _requiring(check):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


dashboard_view = _requiring(is_analyst)  # admins and analysts
admin_view = _requiring(is_admin)  # admins only


def context(request) -> dict:
    """Template context: `can_admin` decides which buttons a page shows."""
    user = getattr(request, "user", None)
    return {"can_admin": bool(user and is_admin(user))}
