"""Dashboard helpers shared by every page: which answer an htmx request gets, and pages of a list.

A page answers a plain request with the whole page and an htmx request with one partial of the
same template. A history restore (htmx has no snapshot of a page the back button returns to, and
asks the server) is an htmx request that wants the whole page. Both answers come from one URL, so
they say which request headers they depend on (`Vary`): no cache, the browser's included, hands
out a fragment for a page. Charts are in `omi_memory.charts`; the pager is `templates/_pagination.html`.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

# A history restore carries HX-Request too: a cache must tell it from a request for a fragment.
HTMX_HEADERS = ("HX-Request", "HX-History-Restore-Request")


def wants_partial(request) -> bool:
    """An htmx request for part of a page (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    """Mark a response whose body depends on the htmx headers (whole page or partial)."""
    patch_vary_headers(response, HTMX_HEADERS)
    return response


def render_page(request, template: str, context: dict, *, partial: str, whole=None, status: int = 200) -> HttpResponse:
    """The whole `template`, or only its `partial` for an htmx request, with `Vary` saying so.
    `whole`, when given, is called for the context only the whole page needs."""
    if wants_partial(request):
        response = render(request, f"{template}#{partial}", context, status=status)
    else:
        response = render(request, template, {**context, **(whole() if whole else {})}, status=status)
    return vary_on_htmx(response)


def form_errors(form: forms.Form) -> str:
    """A form's error messages as one line, for a message or a form's error paragraph."""
    return " ".join(message for messages in form.errors.values() for message in messages)


class PageField(forms.IntegerField):
    """A `page` number from the query string. Like `Paginator.get_page`, a page that is not a
    whole number of at least 1 is the first page, not an error to show."""

    def __init__(self, **kwargs):
        super().__init__(required=False, min_value=1, widget=forms.HiddenInput, **kwargs)

    def clean(self, value):
        try:
            return super().clean(value)
        except ValidationError:
            return None


class PageForm(forms.Form):
    """A form over a paged list's query string; the list's filters are its other fields."""

    page = PageField()

    def page_of(self, objects, per_page: int) -> Page:
        """The asked-for page of `objects` (call after `is_valid()`); past the end, the last one."""
        return Paginator(objects, per_page).get_page(self.cleaned_data.get("page"))
