from django.apps import AppConfig
from django.conf import settings


class MemoriesConfig(AppConfig):
    name = "memories"

    def ready(self):
        # numpy's BLAS gets as many threads as torch (settings.py sets the variables BLAS reads at
        # load; this covers a process that loaded numpy before the settings, such as a benchmark).
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings.TORCH_THREADS, user_api="blas")
