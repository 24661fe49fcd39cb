"""The dashboard's search forms: parameters read from the query string (search, the duplicate
queue), and what is posted (judgments, cluster runs, duplicate scans, merges)."""

import json
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from memories.forms import DateRangeForm
from memories.models import Category, Source
from memories.parts.vectorstores import SearchFilters
from omi_memory.dashboard import DateRangeFields, PageForm, RowIdField, TextField

from . import strategies
from .analysis.clusters import MAX_CLUSTERS
from .models import Experiment
from .strategies import DEFAULT_HALF_LIFE_DAYS, DEFAULT_STRATEGY, FUSIONS, STRATEGIES, half_life_from_rate

AUTO = "auto"  # the strategy left to the service: the default, or the running experiment's arm
SEARCH_DEFAULTS = {"strategy": AUTO, "fusion": "sum", "k": "10", "half_life": f"{DEFAULT_HALF_LIFE_DAYS:g}"}


class SearchForm(DateRangeFields):
    """The search page's parameters, read from the query string (the URL keeps the state)."""

    uid = forms.ChoiceField(label="User")
    query = TextField(
        required=False,
        max_length=strategies.MAX_QUERY_CHARS,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "what are you looking for?",
                "autocomplete": "off",
                "autofocus": True,
            }
        ),
    )
    queries = TextField(
        required=False,
        label="Extra queries (multi_query)",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "one per line; used by multi_query"}),
    )
    strategy = forms.ChoiceField(
        choices=[(AUTO, f"auto ({DEFAULT_STRATEGY}, or an experiment's)")] + [(name, name) for name in STRATEGIES]
    )
    fusion = forms.ChoiceField(choices=[(name, name) for name in FUSIONS])
    k = forms.IntegerField(
        label="k", min_value=1, max_value=strategies.MAX_K, widget=forms.NumberInput(attrs={"size": 3})
    )
    # Scores: time_weighted's decay (the seed's `time_decay` rate in a link is read as its half-life),
    # and the relevance floor under which a result is marked weak.
    half_life = forms.FloatField(
        min_value=0,
        max_value=strategies.MAX_HALF_LIFE_DAYS,
        label="Half-life (days; 0: no decay)",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    floor = forms.FloatField(
        min_value=0, max_value=1, label="Relevance floor", widget=forms.NumberInput(attrs={"step": "0.01"})
    )
    categories = forms.MultipleChoiceField(
        required=False, choices=Category.choices, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    sources = forms.MultipleChoiceField(
        required=False, choices=Source.choices, widget=forms.SelectMultiple(attrs={"size": 4})
    )

    ADVANCED = ("queries", "fusion", "half_life", "floor", "starts", "ends", "categories", "sources")

    def __init__(self, query_string, *, uids: list[tuple[str, int]]):
        data = query_string.copy()
        rate = data.pop("time_decay", [""])[-1]
        if rate and not data.get("half_life"):
            data["half_life"] = _half_life_of(rate)
        defaults = {**SEARCH_DEFAULTS, "floor": f"{settings.SEARCH_RELEVANCE_FLOOR:g}"}
        for name, value in {**defaults, "uid": uids[0][0] if uids else ""}.items():
            if not data.get(name):
                data[name] = value
        super().__init__(data)
        self.fields["uid"].choices = [(uid, f"{uid} ({count})") for uid, count in uids]
        self.advanced_open = any(data.get(name, "") not in ("", defaults.get(name)) for name in self.ADVANCED)

    def clean(self):
        data = super().clean()
        extra = [line.strip() for line in data.get("queries", "").splitlines() if line.strip()]
        queries = [data["query"].strip()] if data.get("query", "").strip() else []
        if data.get("strategy") == "multi_query":
            queries += extra
        if len(queries) > strategies.MAX_QUERIES or any(len(q) > strategies.MAX_QUERY_CHARS for q in queries):
            raise forms.ValidationError(
                f"At most {strategies.MAX_QUERIES} queries of up to {strategies.MAX_QUERY_CHARS} characters each."
            )
        data["all_queries"] = queries
        return data

    def search_kwargs(self) -> dict:
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        filters = SearchFilters(
            starts_at=datetime.combine(data["starts"], time.min, tzinfo=zone) if data["starts"] else None,
            ends_at=datetime.combine(data["ends"], time.max, tzinfo=zone) if data["ends"] else None,
            categories=data["categories"],
            sources=data["sources"],
        )
        return {
            "uid": data["uid"],
            "queries": data["all_queries"],
            "k": data["k"],
            "filters": filters,
            "strategy": None if data["strategy"] == AUTO else data["strategy"],
            "half_life_days": data["half_life"] or None,
            "fusion": data["fusion"],
            "relevance_floor": data["floor"],
        }


def _half_life_of(rate: str) -> str:
    """The half-life (days, 0 for none) of a decay rate from an old link; not a number: as given,
    for the field to refuse."""
    try:
        return f"{half_life_from_rate(float(rate)) or 0:.4g}"
    except ValueError:
        return rate


class ReturnForm(forms.Form):
    """A posted form that leads back to the page it was on (`next`) when done."""

    next = TextField(required=False)

    def next_url(self, request, *, default: str) -> str:
        """`next` when it is a page of this site, else `default` (call after `is_valid()`)."""
        url = self.cleaned_data.get("next", "")
        safe = url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return url if url and safe else default


class JudgeForm(ReturnForm):
    search_id = RowIdField()
    memory_id = RowIdField()
    relevant = forms.TypedChoiceField(choices=[("1", "relevant"), ("0", "not relevant")], coerce=lambda v: v == "1")
    note = TextField(required=False, max_length=2000)


class ArmFields(forms.Form):
    """One arm of an experiment: a strategy and its parameters (left empty: its defaults)."""

    strategy = forms.ChoiceField(choices=[(name, name) for name in STRATEGIES], initial=DEFAULT_STRATEGY)
    fusion = forms.ChoiceField(required=False, choices=[("", "default")] + [(name, name) for name in FUSIONS])
    half_life_days = forms.FloatField(
        required=False,
        min_value=strategies.MIN_HALF_LIFE_DAYS,
        max_value=strategies.MAX_HALF_LIFE_DAYS,
        label="Half-life (days)",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    params = TextField(
        required=False,
        max_length=2000,
        label="Strategy parameters (JSON)",
        widget=forms.TextInput(attrs={"placeholder": '{"rrf_k": 20}'}),
    )
    profile = TextField(required=False, max_length=100, label="Parameter profile")
    index_version = TextField(required=False, max_length=64, label="Index version")

    def clean_params(self) -> dict:
        text = self.cleaned_data["params"].strip()
        try:
            params = json.loads(text) if text else {}
        except ValueError:
            raise forms.ValidationError('Write them as a JSON object, such as {"rrf_k": 20}.') from None
        if not isinstance(params, dict):
            raise forms.ValidationError('Write them as a JSON object, such as {"rrf_k": 20}.')
        return params

    def arm(self) -> dict:
        data = self.cleaned_data
        params = {name: data[name] for name in ("fusion", "half_life_days") if data.get(name) not in (None, "")}
        return {
            "strategy": data["strategy"],
            "params": {**data["params"], **params},
            "profile": data.get("profile", ""),
            "index_version": data.get("index_version", ""),
        }


class ExperimentForm(forms.Form):
    """An experiment to define; its arms are two `ArmFields` with prefixes `a` and `b`."""

    name = TextField(max_length=200)
    mode = forms.ChoiceField(choices=Experiment.Mode.choices)
    traffic_share = forms.FloatField(
        label="Traffic share (0 to 1)",
        min_value=0.001,
        max_value=1,
        initial=0.5,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    uids = TextField(
        required=False,
        label="Only these users (one per line; empty: every user)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, data=None):
        super().__init__(data)
        self.arms = {name: ArmFields(data, prefix=name) for name in ("a", "b")}

    def is_valid(self) -> bool:
        return all([super().is_valid(), *(arm.is_valid() for arm in self.arms.values())])

    def create_kwargs(self) -> dict:
        """Arguments for `search.services.experiment_create` (after `is_valid()`)."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "mode": data["mode"],
            "traffic_share": data["traffic_share"],
            "uids": [line.strip() for line in data["uids"].splitlines() if line.strip()],
            "arm_a": self.arms["a"].arm(),
            "arm_b": self.arms["b"].arm(),
        }


class ExperimentStateForm(forms.Form):
    state = forms.ChoiceField(
        choices=[
            (state, state) for state in (Experiment.State.RUNNING, Experiment.State.PAUSED, Experiment.State.ENDED)
        ]
    )


class ClusterRunForm(forms.Form):
    """A clustering of one user's memories: k given, or (empty or "auto") chosen by silhouette
    between the smallest and largest k. The service checks the values against the memories."""

    uid = TextField(required=False, max_length=128)
    k = TextField(required=False, max_length=20)
    k_min = forms.IntegerField(
        required=False,
        initial=2,
        max_value=MAX_CLUSTERS,
        error_messages={"invalid": "The smallest k must be a whole number."},
    )
    k_max = forms.IntegerField(
        required=False,
        initial=10,
        max_value=MAX_CLUSTERS,
        error_messages={"invalid": "The largest k must be a whole number."},
    )

    def clean_k(self) -> int | None:
        value = self.cleaned_data["k"].strip()
        if not value or value.lower() == "auto":
            return None
        try:
            return int(value)
        except ValueError:
            raise forms.ValidationError(f"k must be a whole number or auto (got {value!r})") from None

    def run_kwargs(self) -> dict:
        """Arguments for `search.analysis.clusters.cluster_run_create`."""
        data = self.cleaned_data
        return {
            "uid": data["uid"],
            "k": data["k"],
            "k_min": 2 if data["k_min"] is None else data["k_min"],
            "k_max": 10 if data["k_max"] is None else data["k_max"],
        }


DUPLICATE_STATUSES = [
    ("open", "Open"),
    ("merged", "Merged"),
    ("dismissed", "Dismissed"),
    ("confirmed", "Confirmed"),
    ("all", "All"),
]


class DuplicateFilterForm(PageForm):
    """The duplicate queue's filters and page, read from the query string; open pairs of every
    user by default (a status that is not one of the queue's is the default too)."""

    uid = TextField(required=False, max_length=128)
    status = forms.ChoiceField(required=False, choices=DUPLICATE_STATUSES)

    def filters(self) -> tuple[str, str]:
        """(uid, status) after `is_valid()`."""
        data = self.cleaned_data
        return data.get("uid", ""), data.get("status") or "open"


class DuplicateScanForm(ReturnForm):
    """A scan for duplicate pairs: one user's memories (or, no uid, every user's) over a
    threshold (none: the configured one). The service checks the threshold's range."""

    uid = TextField(required=False, max_length=128)
    threshold = forms.FloatField(
        required=False, error_messages={"invalid": "The threshold must be a number, such as 0.95."}
    )


class DuplicateMergeForm(ReturnForm):
    """Which memory of a pair to keep (the other is merged into it)."""

    keep = RowIdField(
        error_messages={
            "required": "Choose which memory to keep.",
            "invalid": "Choose which memory to keep.",
            "min_value": "Choose which memory to keep.",
            "max_value": "Choose which memory to keep.",
        },
    )


class AnalyticsForm(DateRangeForm):
    """The analytics page's time range: the last 24 hours, 7 or 30 days, or the days From..To
    (both included, in UTC; one of them alone: 30 days from or up to it)."""

    PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
    period = forms.ChoiceField(
        label="Time range",
        required=False,
        choices=[
            ("24h", "last 24 hours"),
            ("7d", "last 7 days"),
            ("30d", "last 30 days"),
            ("custom", "days from … to …"),
        ],
    )

    def time_range(self, now: datetime) -> tuple[datetime, datetime]:
        """[starts_at, ends_at) of the searches to read; the last 7 days when the form is not valid."""
        data = getattr(self, "cleaned_data", {}) if not self.errors else {}
        if data.get("period") != "custom":
            return now - self.PERIODS.get(data.get("period") or "7d", self.PERIODS["7d"]), now
        starts, ends = data.get("starts"), data.get("ends")
        if not starts:
            ends = ends or now.date()
            starts = ends - timedelta(days=29)
        ends = ends or starts + timedelta(days=29)
        return datetime.combine(starts, time.min, UTC), datetime.combine(ends + timedelta(days=1), time.min, UTC)
