"""Dashboard helpers shared by every page: which answer an htmx request gets, and pages of a list.

A page answers a plain request with the whole page and an htmx request with one partial of the
same template. A history restore (htmx has no snapshot of a page the back button returns to, and
asks the server) is an htmx request that wants the whole page. Both answers come from one URL, so
they say which request headers they depend on (`Vary`): no cache, the browser's included, hands
out a fragment for a page. Charts are in `omi_memory.charts`; the pager is `templates/_pagination.html`.
"""

from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import register_converter
from django.utils.cache import patch_vary_headers

from omi_memory import bounds

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
    """A form's error messages as one line, for a message or a form's error paragraph; each
    field's named by its label ("Start date: Enter a valid date.", as `_form_errors.html` does)."""
    return " ".join(
        f"{form[name].label}: {message}" if name in form.fields else message
        for name, messages in form.errors.items()
        for message in messages
    )


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


# Form fields that keep the input bounds (omi_memory.bounds), for every dashboard form.


def validate_text(value: str) -> None:
    problem = bounds.text_problem(value)
    if problem:
        raise ValidationError(f"This text {problem}.", code="text")


class TextField(forms.CharField):
    """Text without NUL characters or lone surrogates."""

    default_validators = [validate_text]


# One rule for a range of dates on every form (the API's filters answer 422 for the same): a date
# that is not one is an error at its field, and so is an end before the start.
REVERSED_DATES = "End date is before start date."


class DateField(forms.DateField):
    """A day in the accepted range (DATES_FROM up to DATES_BEFORE); the browser's date picker
    offers no other."""

    def __init__(self, **kwargs):
        first, end = bounds.dates_range()
        last = end.date() - timedelta(days=1)
        attrs = {"type": "date", "min": first.date().isoformat(), "max": last.isoformat()}
        super().__init__(widget=forms.DateInput(attrs=attrs), **kwargs)

    def validate(self, value):
        super().validate(value)
        problem = value and bounds.date_problem(value)
        if problem:
            raise ValidationError(f"This date {problem}.", code="date_range")


class DateRangeFields(forms.Form):
    """A start and an end date (both included, in UTC), and the dashboard's one rule for them: an
    end before the start is an error at the end date (a date that is not one, at its own field)."""

    starts = DateField(required=False, label="Start date")
    ends = DateField(required=False, label="End date")

    def clean(self):
        data = super().clean()
        if data.get("starts") and data.get("ends") and data["ends"] < data["starts"]:
            self.add_error("ends", REVERSED_DATES)
        return data


class RowIdField(forms.IntegerField):
    """The id of a row (a memory, a search): a whole number from 1 to 2**63 - 1."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=bounds.MAX_ROW_ID, **kwargs)


class RowIdConverter:
    """`<id:name>` in a page's path: a row id, 1 to 2**63 - 1; any other number is no such page."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= bounds.MAX_ROW_ID:
            raise ValueError(value)
        return number

    def to_url(self, value) -> str:
        return str(value)


register_converter(RowIdConverter, "id")  # once, when this module is first imported (the apps' urls.py do)
