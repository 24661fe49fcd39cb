"""The test run's settings: the app's own (omi_memory/settings.py), with a SECRET_KEY made for this
run when none is set, since without one (and DEBUG off) the app refuses to start. It is put in the
environment, so that the servers and workers a test starts share it."""

import os
import secrets

os.environ.setdefault("SECRET_KEY", f"test-run-{secrets.token_urlsafe(48)}")

from omi_memory.settings import *  # noqa: E402, F403

# A test's rows live in its transaction, which the search-log thread's connection cannot see: logs
# are written in the search (tests/search/test_search_log.py turns the thread on, on committed rows).
SEARCH_LOG_BACKGROUND = False
# Likewise BM25 snapshots are saved in the search that made them (search/lexical.py).
LEXICAL_SNAPSHOT_BACKGROUND = False

# Snapshots of heavy users' vectors go to a directory of this run (tests/memories/parts/
# test_local_store.py makes them on purpose, with LOCAL_STORE_SNAPSHOT_ROWS lowered).
import tempfile  # noqa: E402

LOCAL_STORE_DIR = Path(os.environ.setdefault("LOCAL_STORE_DIR", tempfile.mkdtemp(prefix="omi-local-store-")))  # noqa: F405
