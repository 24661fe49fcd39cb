from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"

    def ready(self):
        # Each newly indexed memory is checked for duplicates (memories sends, search listens).
        from memories.signals import memory_indexed

        from .analysis.duplicates import duplicate_check_enqueue

        memory_indexed.connect(duplicate_check_enqueue, dispatch_uid="search.duplicate_check")
