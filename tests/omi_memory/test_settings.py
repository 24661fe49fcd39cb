"""Production settings come from the environment: no start without SECRET_KEY (DEBUG off), HTTPS
settings, and `check --deploy` clean with the settings the README gives for production."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from omi_memory.settings import env_rate

ROOT = settings.BASE_DIR
# The machine's own environment, less what the test run or a developer's shell sets for the app.
BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "omi_memory.settings"}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def readme_production_env() -> dict:
    """The variables of the README's production block (the code block after its marker line)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```", readme, re.S)
    assert block, "README.md has no production block"
    env = {}
    for line in block.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def test_with_debug_off_and_no_secret_key_the_process_refuses_to_start_and_says_why():
    result = manage("check", env={})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "SECRET_KEY is not set and DEBUG is off: refusing to start" in last_line
    assert "var/secret_key" in last_line and "DEBUG=1" in last_line  # what to do about it


def test_debug_starts_without_a_secret_key_on_a_key_that_check_deploy_flags():
    assert manage("check", env={"DEBUG": "1"}).returncode == 0

    deploy = manage("check", "--deploy", env={"DEBUG": "1"})
    assert "security.W009" in deploy.stderr + deploy.stdout  # the built-in key is named as insecure
    assert "security.W018" in deploy.stderr + deploy.stdout  # and DEBUG


def test_check_deploy_prints_no_warning_with_the_production_settings_of_the_readme():
    env = readme_production_env()
    assert {"SECRET_KEY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"} <= set(env)
    env["SECRET_KEY"] = "k" * 10 + "production-like-" + "Zq8" * 12  # the README says how to make one

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr + result.stdout


def test_https_settings_are_read_from_the_environment():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
        " s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER,"
        " s.TRUSTED_PROXIES, s.PASSWORD_RESET_ENABLED, s.CACHES['default']['BACKEND']]))"
    )

    def read(env: dict) -> list:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**BASE_ENV, "DEBUG": "1", **env},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert read({}) == [
        False,
        0,
        False,
        False,
        False,
        False,
        None,
        0,
        False,
        "django.core.cache.backends.locmem.LocMemCache",
    ]
    production = {
        **readme_production_env(),
        "SECRET_KEY": "x" * 50,
        "EMAIL_HOST": "smtp.example.com",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    assert read(production) == [
        True,
        31536000,
        True,
        True,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        1,
        True,
        "django.core.cache.backends.redis.RedisCache",
    ]


@pytest.mark.parametrize(
    ("raw", "rate"), [("100/min", "100/min"), ("5/s", "5/s"), ("2000/day", "2000/day"), ("off", None), ("OFF", None)]
)
def test_a_throttle_rate_is_read_from_the_environment(monkeypatch, raw, rate):
    monkeypatch.setenv("THROTTLE_X", raw)
    assert env_rate("THROTTLE_X", "1/min") == rate


@pytest.mark.parametrize("raw", ["lots", "100", "100/week", "-1/min", "0/min", "1.5/s"])
def test_a_bad_throttle_rate_stops_the_start_and_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("THROTTLE_X", raw)
    with pytest.raises(ImproperlyConfigured, match=r"THROTTLE_X must be a rate like 100/min"):
        env_rate("THROTTLE_X", "1/min")


@pytest.mark.django_db
def test_behind_a_tls_proxy_plain_requests_are_redirected_and_https_ones_get_hsts_and_secure_cookies(settings):
    from django.contrib.auth.models import User

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    User.objects.create_user("ana", password="correct horse battery staple")

    plain = Client().get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"

    client = Client(HTTP_X_FORWARDED_PROTO="https")
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert page.cookies["csrftoken"]["secure"]
    signed = client.post("/accounts/login/", {"username": "ana", "password": "correct horse battery staple"})
    assert (
        signed.status_code == 302 and signed.cookies["sessionid"]["secure"] and signed.cookies["sessionid"]["httponly"]
    )
