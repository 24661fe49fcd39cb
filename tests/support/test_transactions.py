"""tests/support/transactions.py: tests that run in a rolled-back transaction see `on_commit`
callbacks run where a real commit would run them (installed for every test by tests/conftest.py),
and rows made once for the tests of a class are seen by each, as they were made."""

import pytest
from django.db import transaction

from memories.models import ApiKey


@pytest.mark.django_db
def test_a_callback_waits_for_the_outermost_block_of_the_code_then_runs():
    ran = []
    with transaction.atomic():
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("inner"))
        assert ran == []  # a savepoint released: not a commit
        transaction.on_commit(lambda: ran.append("outer"))
        assert ran == []
    assert ran == ["inner", "outer"]


@pytest.mark.django_db
def test_a_callback_outside_any_block_of_the_code_runs_at_once():
    ran = []
    transaction.on_commit(lambda: ran.append("now"))
    assert ran == ["now"]


@pytest.mark.django_db
def test_a_callback_of_a_block_that_rolls_back_never_runs():
    ran = []
    with pytest.raises(RuntimeError), transaction.atomic():
        transaction.on_commit(lambda: ran.append("rolled back"))
        raise RuntimeError
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("asked to roll back"))
        transaction.set_rollback(True)
    with transaction.atomic():
        try:
            with transaction.atomic():
                transaction.on_commit(lambda: ran.append("inner, rolled back"))
                raise RuntimeError
        except RuntimeError:
            pass
        transaction.on_commit(lambda: ran.append("outer, committed"))
    assert ran == ["outer, committed"]


@pytest.mark.django_db
def test_a_callback_registered_by_a_callback_runs_and_sees_the_rows():
    seen = []

    def second():
        seen.append(ApiKey.objects.filter(name="k").count())

    def first():
        with transaction.atomic():
            ApiKey.objects.create(name="k", prefix="p", key_hash="h")
            transaction.on_commit(second)

    with transaction.atomic():
        transaction.on_commit(first)
    assert seen == [1]


@pytest.mark.django_db(transaction=True)  # real commits: Django's own behaviour, untouched
def test_with_real_commits_callbacks_run_at_the_commit():
    ran = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("committed"))
        assert ran == []
    assert ran == ["committed"]


@pytest.fixture(scope="class")
def shared_key(shared_rows):
    with shared_rows():
        yield ApiKey.objects.create(name="shared", prefix="p", key_hash="shared")


@pytest.mark.django_db
class TestRowsSharedByTheTestsOfAClass:
    def test_a_test_sees_the_shared_rows_and_may_change_them(self, shared_key):
        assert list(ApiKey.objects.values_list("name", flat=True)) == ["shared"]
        ApiKey.objects.update(name="changed")
        ApiKey.objects.create(name="another", prefix="p", key_hash="another")

    def test_the_next_test_sees_them_as_they_were_made(self, shared_key):
        assert list(ApiKey.objects.values_list("name", flat=True)) == ["shared"]


@pytest.mark.django_db
def test_after_the_class_its_shared_rows_are_gone():
    assert not ApiKey.objects.exists()
