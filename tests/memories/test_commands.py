import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command

from memories.models import ApiKey
from memories.selectors import api_key_authenticate
from tests.support.processes import database_url_for_subprocess


# Another process writes the key and commits it: only the flush after a transactional test removes it.
@pytest.mark.django_db(transaction=True)
def test_create_api_key_prints_the_key_alone_on_its_last_line():
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "--name", "mobile app", "--uid", "alice"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={
            "DATABASE_URL": database_url_for_subprocess(),
            "SECRET_KEY": os.environ["SECRET_KEY"],
            "PATH": "/usr/bin:/bin",
        },
    )

    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip().splitlines()[-1]
    assert raw.startswith("omk_") and " " not in raw
    key = api_key_authenticate(raw_key=raw)
    assert key is not None and key.name == "mobile app" and key.uid == "alice"
    assert raw not in (key.key_hash, key.prefix)  # stored hashed


@pytest.mark.django_db
def test_create_api_key_refuses_a_bad_uid():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", name="x", uid="not a uid!")
    assert ApiKey.objects.count() == 0


@pytest.mark.django_db
def test_load_demo_indexes_the_demo_and_prints_a_login_and_a_key_that_work(tmp_path):
    import io
    import re

    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    from memories.models import Memory

    demo = (settings.BASE_DIR / "memories" / "demo" / "demo_memories.jsonl").read_text().splitlines()
    path = tmp_path / "demo.jsonl"
    path.write_text("\n".join(demo[:3]))
    first, second = io.StringIO(), io.StringIO()

    call_command("load_demo", "--file", str(path), stdout=first)
    call_command("load_demo", "--file", str(path), stdout=second)  # again: nothing doubled

    assert "Demo ready: 3 indexed" in second.getvalue()
    assert Memory.objects.count() == 3 and Memory.objects.filter(status="indexed").count() == 3
    password = re.search(r"admin / (\S+)", second.getvalue()).group(1)
    sign_in = RequestFactory().post("/accounts/login/")  # the sign-in lockout needs the request
    user = authenticate(sign_in, username="admin", password=password)
    assert user is not None and user.is_superuser and user.groups.filter(name="admin").exists()
    analyst_password = re.search(r"analyst / (\S+)", second.getvalue()).group(1)
    analyst = authenticate(sign_in, username="analyst", password=analyst_password)
    assert (
        analyst is not None
        and not analyst.is_superuser
        and list(analyst.groups.values_list("name", flat=True)) == ["analyst"]
    )
    assert api_key_authenticate(raw_key=re.search(r"(omk_\S+)", second.getvalue()).group(1)) is not None
    assert api_key_authenticate(raw_key=re.search(r"(omk_\S+)", first.getvalue()).group(1)) is None  # renewed
