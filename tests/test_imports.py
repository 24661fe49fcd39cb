"""Importing the tasks, the API and the views is cheap: no torch, no model, no sklearn."""

import subprocess
import sys

from django.conf import settings


def test_importing_tasks_and_views_does_not_import_torch():
    code = (
        "import sys, django; django.setup();"
        "import memories.tasks, search.tasks, memories.api, search.api, omi_memory.urls, omi_memory.api;"
        "from django.urls import resolve; resolve('/api/v1/docs');"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'sklearn') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "omi_memory.settings", "SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
