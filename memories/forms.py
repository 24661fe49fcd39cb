from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from omi_memory.dashboard import DateField, DateRangeFields, PageForm, RowIdField, TextField

from .models import AuditEvent, Category, Memory, Source

SORTS = {
    "-created": "-created_at",
    "created": "created_at",
    "title": "title",
    "-title": "-title",
    "uid": "uid",
    "-uid": "-uid",
    "status": "status",
    "-status": "-status",
    "category": "category",
    "-category": "-category",
}


class DateRangeForm(DateRangeFields, PageForm):
    """A paged list's filters with a range of days, `From` and `To` (both included, in UTC)."""

    def date_range(self) -> dict:
        """`starts_at` (the start of `From`) and `ends_at` (the end of `To`), None when not given."""
        starts, ends = self.cleaned_data.get("starts"), self.cleaned_data.get("ends")
        return {
            "starts_at": datetime.combine(starts, time.min, UTC) if starts else None,
            "ends_at": datetime.combine(ends, time.max, UTC) if ends else None,
        }


class MemoryFilterForm(DateRangeForm):
    """The memory list's filters, sort and page, read from the query string (so URLs keep them)."""

    uid = TextField(required=False, max_length=128)
    status = forms.ChoiceField(required=False, choices=[("", "any but deleted"), *Memory.Status.choices])
    category = forms.ChoiceField(required=False, choices=[("", "any"), *Category.choices])
    source = forms.ChoiceField(required=False, choices=[("", "any"), *Source.choices])
    q = TextField(
        required=False,
        max_length=200,
        label="Text contains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "words in title, overview, transcript"}),
    )
    sort = forms.ChoiceField(required=False, choices=[(key, key) for key in SORTS], widget=forms.HiddenInput)

    def selector_filters(self) -> dict:
        """Arguments for `memories.selectors.memory_list` from the fields that are valid (after
        `is_valid()`, `cleaned_data` holds just those)."""
        data = self.cleaned_data
        return {
            "uid": data.get("uid") or None,
            "status": data.get("status") or None,
            "category": data.get("category") or None,
            "source": data.get("source") or None,
            **self.date_range(),
            "text": data.get("q") or "",
        }

    def ordering(self) -> str:
        return SORTS[self.cleaned_data.get("sort") or "-created"]


class MemoryPartForm(forms.Form):
    """Which part of a memory's page a poll asks for (none: the whole page)."""

    part = forms.ChoiceField(required=False, choices=[("status", "status")])


class ReconcileForm(forms.Form):
    """Start a reconciliation of every user's vectors; `repair` puts right what it finds."""

    repair = forms.BooleanField(required=False)


class PipelineRetryForm(forms.Form):
    """Retry one failed memory, or (none given) every failed one."""

    memory_id = RowIdField(
        required=False,
        error_messages={
            "invalid": "The memory to retry is given by its number.",
            "min_value": "The memory to retry is given by its number.",
            "max_value": "The memory to retry is given by its number.",
        },
    )


# API keys and the audit trail (admins only)


def _start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


class ApiKeyCreateForm(forms.Form):
    """A new key: its name, its scope, and when it expires (in some days, on a date, or never)."""

    name = TextField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. mobile app backend"}))
    uid = TextField(
        required=False,
        max_length=128,
        label="User",
        widget=forms.TextInput(attrs={"placeholder": "empty: all users"}),
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=36500,
        label="Expires in (days)",
        widget=forms.NumberInput(attrs={"placeholder": "never"}),
    )
    expires_on = DateField(required=False, label="or on")
    admin = forms.BooleanField(required=False, label="Admin scope")

    def clean(self):
        data = super().clean()
        if data.get("expires_in_days") and data.get("expires_on"):
            raise forms.ValidationError("Give the expiry in days or as a date, not both.")
        return data

    def create_kwargs(self) -> dict:
        data = self.cleaned_data
        days, day = data.get("expires_in_days"), data.get("expires_on")
        expires_at = timezone.now() + timedelta(days=days) if days else _start_of_day(day) if day else None
        return {
            "name": data["name"],
            "uid": data.get("uid", "").strip(),
            "admin": data.get("admin", False),
            "expires_at": expires_at,
        }


class ApiKeyExpireForm(forms.Form):
    """The day (from its start, UTC) an existing key stops working."""

    expires_on = DateField(label="Expires on")

    def expires_at(self) -> datetime:
        return _start_of_day(self.cleaned_data["expires_on"])


class AuditFilterForm(DateRangeForm):
    """The audit page's filters and page, read from the query string."""

    action = forms.ChoiceField(required=False, choices=[("", "any"), *AuditEvent.Action.choices])
    actor = TextField(
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"type": "search", "list": "actors", "placeholder": "name, key or command"}),
    )
    uid = TextField(required=False, max_length=128, label="User")

    def selector_filters(self) -> dict:
        data = self.cleaned_data
        return {
            "action": data.get("action") or "",
            "actor": (data.get("actor") or "").strip(),
            "uid": (data.get("uid") or "").strip(),
            **self.date_range(),
        }


class VectorLookupForm(forms.Form):
    """The index view's look-up: a memory, and which of its vectors to find the neighbours of."""

    memory = RowIdField(required=False, label="Memory id")
    vector = TextField(required=False, max_length=300, widget=forms.HiddenInput)
