"""tests/support/transactions.py: in tests on `db`, what a block leaves to `on_commit` runs when it
ends (callbacks registered by callbacks too: the pipeline enqueues the duplicate check so), and
rows made once for the tests of a class are seen by each as they were made."""

import pytest
from django.db import transaction

from memories.models import ApiKey
from tests.support.transactions import committed


@pytest.mark.django_db
def test_what_a_block_leaves_to_commit_runs_when_it_ends_callbacks_of_callbacks_too():
    seen = []

    def second():
        seen.append(ApiKey.objects.filter(name="k").count())

    def first():
        with transaction.atomic():
            ApiKey.objects.create(name="k", prefix="p", key_hash="h")
            transaction.on_commit(second)

    with committed():
        transaction.on_commit(first)
        assert seen == []  # nothing has committed yet
    assert seen == [1]


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
