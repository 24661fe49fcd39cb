from datetime import UTC, datetime, time

from django import forms

from omi_memory.dashboard import DateField, PageForm, RowIdField, TextField

from .models import Category, Memory, Source

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


class MemoryFilterForm(PageForm):
    """The memory list's filters, sort and page, read from the query string (so URLs keep them)."""

    uid = TextField(required=False, max_length=128)
    status = forms.ChoiceField(required=False, choices=[("", "any but deleted"), *Memory.Status.choices])
    category = forms.ChoiceField(required=False, choices=[("", "any"), *Category.choices])
    source = forms.ChoiceField(required=False, choices=[("", "any"), *Source.choices])
    starts = DateField(required=False, label="From")
    ends = DateField(required=False, label="To")
    q = TextField(
        required=False,
        max_length=200,
        label="Text contains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "words in title, overview, transcript"}),
    )
    sort = forms.ChoiceField(required=False, choices=[(key, key) for key in SORTS], widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("starts") and data.get("ends") and data["starts"] > data["ends"]:
            raise forms.ValidationError("'From' is after 'To'.")
        return data

    def selector_filters(self) -> dict:
        """Arguments for `memories.selectors.memory_list` from the fields that are valid (after
        `is_valid()`, `cleaned_data` holds just those)."""
        data = self.cleaned_data
        starts, ends = data.get("starts"), data.get("ends")
        return {
            "uid": data.get("uid") or None,
            "status": data.get("status") or None,
            "category": data.get("category") or None,
            "source": data.get("source") or None,
            "starts_at": datetime.combine(starts, time.min, UTC) if starts else None,
            "ends_at": datetime.combine(ends, time.max, UTC) if ends else None,
            "text": data.get("q") or "",
        }

    def ordering(self) -> str:
        return SORTS[self.cleaned_data.get("sort") or "-created"]


class MemoryPartForm(forms.Form):
    """Which part of a memory's page a poll asks for (none: the whole page)."""

    part = forms.ChoiceField(required=False, choices=[("status", "status")])


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
