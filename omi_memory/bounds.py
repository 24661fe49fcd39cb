"""Input bounds: each rule is defined here once, and used by every way data comes in.

The API's schemas (`omi_memory.api_common` types), the dashboard's form fields
(`omi_memory.dashboard`), the import command and the services' own checks (`memory_build`) all call
these; `manage.py check_data` looks for rows stored before a rule held.

- Text: no NUL character (PostgreSQL cannot store one; SQLite would, and hand it back) and no lone
  surrogate (not Unicode: it cannot be encoded, stored or sent back).
- Moments: the UTC value of a date and time lies on or after `DATES_FROM` and before
  `DATES_BEFORE` (settings; 1970-01-01 and 2100-01-01), so every database stores it and Python reads
  it back (PostgreSQL stores the year 10000 and 1 BC; Python cannot read them). The API takes them
  as RFC 3339 strings with an offset (`Z` or `+HH:MM`), `datetime_pattern()`.
- Paging: `limit` 1..MAX_LIMIT, `offset` 0..MAX_OFFSET; a row id 1..MAX_ROW_ID (a bigint).
- Error details: at most MAX_ERROR_DETAILS entries, each part cut to MAX_ERROR_TEXT characters.
"""

import re
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings

MAX_LIMIT = 100
MAX_OFFSET = 1_000_000_000
MAX_ROW_ID = 2**63 - 1
MAX_ERROR_DETAILS = 20
MAX_ERROR_TEXT = 200

# What `str.strip()` would call space, spelled as JSON Schema's regular expressions (ECMA-262 `\s`)
# read it, so that "not blank" means one thing in the code and in the OpenAPI document.
SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
TEXT_PATTERN = "^[^\\u0000]*$"  # the schema's half of the text rule (a pattern cannot name lone surrogates)
NOT_BLANK_PATTERN = f"[^{SPACE}]"
NOT_BLANK_TEXT_PATTERN = f"^[^\\u0000]*[^{SPACE}\\u0000][^\\u0000]*$"
TEXT_RULE = "No NUL character (U+0000) and no lone surrogate (U+D800 to U+DFFF)."

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
_NOT_BLANK = re.compile(NOT_BLANK_PATTERN)


def text_problem(value: str) -> str | None:
    """What makes `value` unfit to store as text, or None."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000)"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not Unicode text"


def clean_text(value: str) -> str:
    """`value`, or ValueError saying why it cannot be stored."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def is_blank(value: str) -> bool:
    """Nothing but spaces (or nothing at all)."""
    return not _NOT_BLANK.search(value)


def clean_not_blank(value: str) -> str:
    clean_text(value)
    if is_blank(value):
        raise ValueError("must not be empty or only spaces")
    return value


def scrub_text(value: str) -> str:
    """`value` without what the text rule forbids (for text a part of the pipeline wrote)."""
    return _FORBIDDEN.sub("", value)


def dates_range() -> tuple[datetime, datetime]:
    """[first, end): the moments accepted, in UTC."""
    return (
        datetime.combine(settings.DATES_FROM, time.min, UTC),
        datetime.combine(settings.DATES_BEFORE, time.min, UTC),
    )


def dates_rule() -> str:
    first, end = dates_range()
    return f"on or after {first:%Y-%m-%dT%H:%M:%SZ} and before {end:%Y-%m-%dT%H:%M:%SZ} (UTC)"


def moment_in_range(value: datetime) -> bool:
    """Whether an aware `value` (a naive one is taken as UTC) lies in the accepted range."""
    first, end = dates_range()
    return first <= (value if value.tzinfo else value.replace(tzinfo=UTC)) < end


def clean_moment(value: datetime) -> datetime:
    """`value` in UTC (a naive one is taken as UTC), or ValueError when it is out of range. In UTC:
    RFC 3339 allows offsets up to 23:59, PostgreSQL takes them up to 15:59."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not moment_in_range(aware):
        raise ValueError(f"must be {dates_rule()}")
    return aware.astimezone(UTC)


def date_problem(value: date) -> str | None:
    """A whole day (a dashboard's date) must lie in the range."""
    first, end = dates_range()
    if not first.date() <= value < end.date():
        return f"must be from {first:%Y-%m-%d} to {end.date() - timedelta(days=1):%Y-%m-%d}"
    return None


def _digits_range(low: int, high: int, width: int) -> str:
    """A regular expression matching the zero-padded numbers low..high of `width` digits."""
    parts = []
    while low <= high:
        power = 0  # the largest aligned block of 10**power numbers starting at low that fits
        while power < width and low % 10 ** (power + 1) == 0 and low + 10 ** (power + 1) - 1 <= high:
            power += 1
        if power == width:
            return "[0-9]" * width
        step, prefix = 10**power, str(low).zfill(width)[: width - power]
        first = int(prefix[-1])
        last = first
        while last < 9 and low + (last - first + 2) * step - 1 <= high:
            last += 1
        digit = str(first) if first == last else f"[{first}-{last}]"
        parts.append(prefix[:-1] + digit + "[0-9]" * power)
        low += (last - first + 1) * step
    return parts[0] if len(parts) == 1 else "(" + "|".join(parts) + ")"


def datetime_pattern() -> str:
    """RFC 3339 with an offset, in the years of the accepted range (the UTC value is checked too)."""
    first, end = dates_range()
    years = _digits_range(first.year, (end - timedelta(microseconds=1)).year, 4)
    return (
        f"^{years}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    )


def clean_datetime_text(value: object) -> object:
    """An API date-time must be a string shaped like `datetime_pattern()` (say 2025-05-01T09:30:00Z)."""
    if not isinstance(value, str):
        raise ValueError("must be a date and time as a string, such as 2025-05-01T09:30:00Z")
    if not re.fullmatch(datetime_pattern(), value):
        raise ValueError(
            "must be a date and time with an offset, such as 2025-05-01T09:30:00Z or 2025-05-01T11:30:00+02:00, "
            + dates_rule()
        )
    return value
