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
        # A profile or an experiment saved in this process: its searches read them again at once.
        from django.db.models.signals import post_delete, post_save

        from .selectors import forget_recently_read

        for model in (self.get_model("ParameterProfile"), self.get_model("Experiment")):
            for signal in (post_save, post_delete):
                signal.connect(forget_recently_read, sender=model, dispatch_uid=f"search.forget.{model.__name__}")
        # `manage.py sweep` (without Redis, what Celery beat's sweep_jobs does) runs the jobs' sweeper.
        from omi_memory.sweeps import sweep_register

        from .analysis.jobs import jobs_sweep

        sweep_register("cluster runs and duplicate scans", jobs_sweep)
        # A Celery pool process ends with os._exit, which skips atexit: its writers are flushed first.
        from celery.signals import worker_process_shutdown

        worker_process_shutdown.connect(flush_writers, dispatch_uid="search.flush_writers")


def flush_writers(**kwargs) -> None:
    """Save what this process's writer threads still hold: search logs and BM25 snapshots (at exit)."""
    from . import lexical, search_log

    search_log.writer.flush()
    lexical.writer.flush(lexical.EXIT_WAIT)
