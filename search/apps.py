from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"

    def ready(self):
        # Each newly indexed memory is checked for duplicates (memories sends, search listens).
        from memories.signals import memory_deleted, memory_indexed

        from .analysis.duplicates import duplicate_check_enqueue
        from .lexical import snapshots_forget

        memory_indexed.connect(duplicate_check_enqueue, dispatch_uid="search.duplicate_check")
        # A user erased keeps no BM25 snapshot either.
        memory_deleted.connect(snapshots_forget, dispatch_uid="search.lexical_snapshots")
