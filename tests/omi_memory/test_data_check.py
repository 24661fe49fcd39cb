"""`manage.py check_data` finds the rows a database holds from before the input bounds (dates that
cannot be read back, NUL characters) and, with --fix, repairs them so that every page reads again."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DataError, connection

from memories.models import Event, Memory
from tests.support.transcripts import BUDGET, DENTIST

pytestmark = pytest.mark.django_db

# What PostgreSQL stored for `9999-12-31T23:59:59-14:00` and `0001-01-01T00:00:00+14:00` (rows that no
# Python can read); SQLite, which stores what Django hands it, could only get dates out of range.
POSTGRESQL = connection.vendor == "postgresql"
LATE = "10000-01-01 13:59:59+00" if POSTGRESQL else "9999-12-31 23:59:59"
EARLY = "0001-12-31 10:00:00+00 BC" if POSTGRESQL else "0001-01-01 00:00:00"


def _set(table: str, column: str, value: str, row_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, row_id])


def test_dates_written_before_the_bounds_are_found_then_fixed_and_every_read_works_again(api, remember, capsys):
    broken, fine = remember("alice", DENTIST), remember("alice", BUDGET)
    event = Event.objects.create(memory=fine, title="Tea", start=datetime(2026, 5, 1, tzinfo=UTC))
    _set("memories_memory", "created_at", LATE, broken.id)
    _set("memories_memory", "started_at", EARLY, broken.id)
    _set("memories_event", "start", EARLY, event.id)
    if POSTGRESQL:
        with pytest.raises(DataError):  # what every list of memories hit: the row cannot be read
            list(Memory.objects.all())

    with pytest.raises(CommandError, match="3 field"):
        call_command("check_data")
    found = capsys.readouterr().out
    assert "memories.Memory.created_at: 1 row(s) outside the accepted range" in found and f"ids {broken.id}" in found
    assert "memories.Memory.started_at: 1 row(s)" in found and "memories.Event.start: 1 row(s)" in found
    assert "check_data --fix" in found

    call_command("check_data", "--fix")
    fixed = capsys.readouterr().out
    call_command("check_data")

    assert (
        "fixed 3 value(s)" in fixed
        and f"reprocess these memories so their vectors and extraction follow: {broken.id}" in fixed
    )
    assert "no problems" in capsys.readouterr().out
    broken.refresh_from_db()
    assert broken.created_at == datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)  # required: the nearest end
    assert broken.started_at is None  # optional: emptied
    assert Event.objects.get(id=event.id).start == datetime(1970, 1, 1, tzinfo=UTC)
    assert api.get("/memories").status_code == 200
    assert api.get(f"/memories/{broken.id}").status_code == 200


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL cannot store a NUL character at all")
def test_nul_characters_stored_before_the_bounds_are_found_and_removed(remember, capsys):
    memory = remember("alice", DENTIST)
    _set("memories_memory", "transcript", "Alice: the crown\x00 fits.", memory.id)

    with pytest.raises(CommandError):
        call_command("check_data")
    assert f"memories.Memory.transcript: 1 row(s) holding a NUL character or a lone surrogate: ids {memory.id}" in (
        capsys.readouterr().out
    )
    call_command("check_data", "--fix")

    memory.refresh_from_db()
    assert memory.transcript == "Alice: the crown fits."


def test_a_clean_database_has_no_problems(remember, capsys):
    remember("alice", DENTIST)

    call_command("check_data")

    assert "no problems" in capsys.readouterr().out
