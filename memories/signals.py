"""Signals other apps listen to, so that `memories` never has to import them."""

from django.dispatch import Signal

# Memories were just marked `indexed` (their vectors stored); `memory_ids`: their ids. Sent by the
# processing engine outside any transaction of its own; a receiver that needs the rows committed
# defers its work with `transaction.on_commit`.
memory_indexed = Signal()
