import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omi_memory.settings")

app = Celery("omi_memory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
