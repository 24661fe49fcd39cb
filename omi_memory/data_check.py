"""Rows stored before the input bounds held (omi_memory.bounds), found and, if asked, repaired.

Every model of the project's own apps is checked, through the app registry:
- date and time fields whose value lies outside the accepted range (compared in the database: such
  a row cannot be read into Python at all, PostgreSQL's year 10000 or 1 BC least of all);
- text fields holding a NUL character or a lone surrogate. PostgreSQL cannot store either, so
  only other databases (SQLite) are read for them.

A repair sets an out-of-range time to NULL where the field allows it, else to the nearest end of
the range, and removes the forbidden characters from text. Used by `manage.py check_data`.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

from omi_memory import bounds

SHOWN_IDS = 10


@dataclass
class Problem:
    model: type[models.Model]
    field: models.Field
    what: str  # "dates" or "text"
    ids: list = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    def describe(self) -> str:
        shown = ", ".join(str(i) for i in self.ids[:SHOWN_IDS]) + (" ..." if len(self.ids) > SHOWN_IDS else "")
        if self.what == "dates":
            rule = f"outside the accepted range ({bounds.dates_rule()})"
        else:
            rule = "holding a NUL character or a lone surrogate"
        return f"{self.where}: {len(self.ids)} row(s) {rule}: ids {shown}"


def _project_models() -> list[type[models.Model]]:
    root = str(settings.BASE_DIR)
    return [
        model
        for config in apps.get_app_configs()
        if str(config.path).startswith(root)
        for model in config.get_models()
        if not model._meta.proxy and model._meta.managed
    ]


def _out_of_range(model, name: str) -> models.QuerySet:
    first, end = bounds.dates_range()
    return model._default_manager.filter(models.Q(**{f"{name}__lt": first}) | models.Q(**{f"{name}__gte": end}))


def data_problems() -> list[Problem]:
    """What breaks the bounds, per model and field."""
    problems = []
    read_text = connection.vendor != "postgresql"
    for model in _project_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.DateTimeField):
                ids = list(_out_of_range(model, model_field.attname).order_by("pk").values_list("pk", flat=True))
                if ids:
                    problems.append(Problem(model, model_field, "dates", ids))
            elif read_text and isinstance(model_field, models.CharField | models.TextField):
                rows = model._default_manager.order_by("pk").values_list("pk", model_field.attname)
                ids = [pk for pk, text in rows.iterator() if text and bounds.text_problem(text)]
                if ids:
                    problems.append(Problem(model, model_field, "text", ids))
    return problems


def data_problems_fix(problems: list[Problem]) -> int:
    """Repair what `data_problems` found; returns how many values changed."""
    first, end = bounds.dates_range()
    changed = 0
    with transaction.atomic():
        for problem in problems:
            manager, name = problem.model._default_manager, problem.field.attname
            if problem.what == "dates":
                rows = _out_of_range(problem.model, name).filter(pk__in=problem.ids)
                if problem.field.null:
                    changed += rows.update(**{name: None})
                else:
                    changed += rows.filter(**{f"{name}__lt": first}).update(**{name: first})
                    changed += rows.filter(**{f"{name}__gte": end}).update(**{name: end - timedelta(seconds=1)})
            else:
                for pk, text in manager.filter(pk__in=problem.ids).values_list("pk", name):
                    changed += manager.filter(pk=pk).update(**{name: bounds.scrub_text(text)})
    return changed
