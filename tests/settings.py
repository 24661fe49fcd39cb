"""The test run's settings: the app's own (omi_memory/settings.py), with a SECRET_KEY made for this
run when none is set, since without one (and DEBUG off) the app refuses to start. It is put in the
environment, so that the servers and workers a test starts share it."""

import os
import secrets

os.environ.setdefault("SECRET_KEY", f"test-run-{secrets.token_urlsafe(48)}")

from omi_memory.settings import *  # noqa: E402, F403
