"""Signing in: the login page (which says when an account is locked out), and password reset,
offered only when mail can be sent.

Lockouts are django-axes' (settings: AXES_*, LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_MINUTES): it counts
failed sign-ins per username and address and, past the limit, answers with `locked_out` below.
"""

from functools import wraps

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404
from django.shortcuts import render
from django.urls import path


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "password_reset_enabled": settings.PASSWORD_RESET_ENABLED}


def locked_out(request, original_response=None, credentials=None):
    """The login page, saying that this username is locked out from this address, and until when
    (AXES_LOCKOUT_CALLABLE). 429: too many attempts."""
    username = get_client_username(request, credentials) or ""
    cool_off = get_cool_off(request)
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "locked_out": True,
        "lockout_minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
        "next": request.POST.get("next", request.GET.get("next", "")),
        "password_reset_enabled": settings.PASSWORD_RESET_ENABLED,
    }
    return render(request, "registration/login.html", context, status=429)


def needs_mail(view):
    """A password-reset page: 404 while no mail is set up (it could send nothing)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.PASSWORD_RESET_ENABLED:
            raise Http404("password reset needs mail (EMAIL_HOST)")
        return view(request, *args, **kwargs)

    return wrapped


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", needs_mail(auth_views.PasswordResetView.as_view()), name="password_reset"),
    path("password_reset/done/", needs_mail(auth_views.PasswordResetDoneView.as_view()), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        needs_mail(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path("reset/done/", needs_mail(auth_views.PasswordResetCompleteView.as_view()), name="password_reset_complete"),
]
