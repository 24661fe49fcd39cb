"""Signals of the search app, for apps above it (webhooks) that search must not import."""

from django.dispatch import Signal

# New duplicate pairs were opened; `pair_ids`: their ids. Sent inside the transaction that saves
# them: a receiver's writes commit or roll back with it.
duplicate_found = Signal()
