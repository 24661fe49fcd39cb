"""Schemathesis hooks for tests/omi_memory/test_api_fuzz.py (SCHEMATHESIS_HOOKS names this module).

They change no check. The fuzzer is an API client with a key: the schema it loads leaves out the
other way in, a dashboard admin's session (for the docs' "Try it out"), or its check that invalid
credentials are refused would send a made-up session cookie beside the valid key, which is rightly
accepted. Then they do two things to what the fuzzer generates:
- the rules of the API that JSON Schema cannot state, an end not before its start
  (`finished_at` / `started_at`, `ends_at` / `starts_at`) and a range of k in order (`k_min` /
  `k_max`), documented in the schemas' descriptions: two values generated in the wrong order are
  swapped, so that a request the schema calls valid is one the API must accept (schemathesis
  checks each case again after a hook, so a case that was invalid for another reason stays a
  negative case);
- uids: the fuzzer's key is scoped to one uid (FUZZ_UID), so it can touch no other user's rows;
  three valid uids (FUZZ_UID_PATTERN) in four become that uid (the rest are answered 403, which is
  documented); an invalid one stays as it is.
"""

import os
import re
import zlib
from datetime import datetime

import schemathesis

ORDERED = (("started_at", "finished_at"), ("starts_at", "ends_at"))
ORDERED_NUMBERS = (("k_min", "k_max"),)


def _time(value):
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _fix(values):
    if not isinstance(values, dict):
        return values
    for start, end in ORDERED:
        first, last = _time(values.get(start)), _time(values.get(end))
        if first and last and first.tzinfo and last.tzinfo and last < first:
            values[start], values[end] = values[end], values[start]
    for low, high in ORDERED_NUMBERS:
        first, last = values.get(low), values.get(high)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (first, last)) and last < first:
            values[low], values[high] = last, first
    uid = values.get("uid")
    valid = isinstance(uid, str) and re.fullmatch(os.environ["FUZZ_UID_PATTERN"], uid)
    if valid and zlib.crc32(uid.encode()) % 4:
        values["uid"] = os.environ["FUZZ_UID"]
    if isinstance(values.get("memories"), list):
        values["memories"] = [_fix(item) for item in values["memories"]]
    return values


@schemathesis.hook
def before_load_schema(context, raw_schema):
    raw_schema["components"]["securitySchemes"].pop("AdminSessionAuth")
    for path in raw_schema["paths"].values():
        for operation in path.values():
            operation["security"] = [s for s in operation.get("security", []) if "AdminSessionAuth" not in s]


@schemathesis.hook
def map_body(context, body):
    return _fix(body)


@schemathesis.hook
def map_query(context, query):
    return _fix(query)
