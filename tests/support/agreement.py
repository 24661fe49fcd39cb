"""Do the vector store and the database agree? What every fault test ends with.

Each indexed memory (or searchable one: being reprocessed, with its old vectors) has in the store
exactly the vector ids the database keeps for it (`MemoryVector`), at least its own; any other
memory (queued, processing, failed, deleted) and any memory the database does not know has none.
Store ids are unique, so a memory processed twice cannot hold duplicate vectors: extra ids
(another run's windows) or missing ones show here. Read from the local store (`LocalVector`); then
the reconciliation (`memories.reconcile`, what `manage.py reconcile` runs) must find nothing either:
no vector missing, no orphan, no metadata that differs.
"""

from collections import defaultdict

from django.conf import settings

from memories.models import LocalVector, Memory, MemoryVector
from tests.support.reconcile import assert_reconciled


def disagreements() -> list[str]:
    """What differs between the store and the database; empty when they agree."""
    stored = defaultdict(set)
    rows = LocalVector.objects.filter(namespace=settings.VECTOR_NAMESPACE)
    for memory_id, record_id, uid in rows.values_list("memory_id", "record_id", "uid"):
        stored[memory_id].add((record_id, uid))
    expected = defaultdict(set)
    for memory_id, vector_id in MemoryVector.objects.values_list("memory_id", "vector_id"):
        expected[str(memory_id)].add(vector_id)
    problems = []
    memories = {str(m.id): m for m in Memory.objects.only("id", "uid", "status", "searchable")}
    for memory_id, memory in memories.items():
        have = {record_id for record_id, _ in stored.pop(memory_id, set())}
        if memory.status == Memory.Status.INDEXED or memory.searchable:
            want = expected[memory_id]
            if not want or f"{memory.uid}-{memory.id}" not in want:
                problems.append(f"memory {memory_id} is indexed without its vectors in the database: {sorted(want)}")
            if have != want:
                problems.append(
                    f"memory {memory_id}: the store lacks {sorted(want - have)} and has extra {sorted(have - want)}"
                )
        elif have:
            problems.append(f"memory {memory_id} is {memory.status} and has vectors in the store: {sorted(have)}")
    for memory_id, records in stored.items():
        problems.append(f"vectors of memory {memory_id}, unknown to the database: {sorted(r for r, _ in records)}")
    return problems


def assert_vectors_agree_with_database() -> None:
    problems = disagreements()
    assert not problems, "\n".join(problems[:20])
    assert_reconciled()
