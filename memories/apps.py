from django.apps import AppConfig
from django.conf import settings


class MemoriesConfig(AppConfig):
    name = "memories"

    def ready(self):
        # numpy's BLAS gets as many threads as torch (settings.py sets the variables BLAS reads at
        # load; this covers a process that loaded numpy before the settings, such as a benchmark).
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings.TORCH_THREADS, user_api="blas")
        # `manage.py sweep` (without Redis, what Celery beat's sweep task does) runs this app's sweeper.
        from omi_memory.sweeps import sweep_register

        from .services import pipeline_sweep

        sweep_register("memories", lambda: pipeline_sweep().counts())
