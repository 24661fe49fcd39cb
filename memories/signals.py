"""Signals other apps listen to, so that `memories` never has to import them."""

from django.dispatch import Signal

# Memories were just marked `indexed` (their vectors stored); `memory_ids`: their ids. Sent by the
# processing engine outside any transaction of its own; a receiver that needs the rows committed
# defers its work with `transaction.on_commit`.
memory_indexed = Signal()

# Memories were just marked `failed` (for good: retries spent, a permanent error, or their worker
# lost too often); `memory_ids`: their ids. Sent by the processing engine (outside a transaction)
# and the sweeper (inside its transaction).
memory_failed = Signal()

# Memories were just deleted (by a caller, merged away into another, or their user erased);
# `memory_ids`: their ids. Sent inside the transaction that deletes them: a receiver's writes
# commit or roll back with it.
memory_deleted = Signal()
