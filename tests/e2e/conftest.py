"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

The live server serves the test database from a thread of this process; with no REDIS_URL the
Celery tasks run eagerly inside the request that enqueues them.
"""

import contextlib
import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio event loop in the test thread (for as long as the
# session's browser lives, so also during the tests that run after these), and Django refuses ORM
# calls from a thread with a running loop (SynchronousOnlyOperation). The tests' ORM calls
# (creating users and memories, checking rows) are plain blocking calls that never run inside a
# coroutine, so the guard protects nothing here; it is set at import, for the whole process.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"  # git ignores it
PASSWORD = "correct horse battery staple"


def _missing(reason: str):
    if os.environ.get("REQUIRE_SERVICES"):
        pytest.fail(f"Chromium is required (REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's package)")
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
        except Error as error:
            _missing(f"Chromium at {CHROMIUM} did not start: {error}")
        yield browser
        browser.close()


# A 4xx answer that a test asks for (a form's error, a 404) is logged by Chromium as a failed resource;
# it is what the test checks, not a fault of the page.
ASKED_FOR = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d\b")
# Every CSP violation is reported to the console, whatever the page does with the error.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline code"} on ${location.pathname}` +
  (e.sourceFile ? ` (${e.sourceFile}:${e.lineNumber})` : "")));
"""


@pytest.fixture
def page(browser, live_server, request):
    """A fresh context and page per test, at the live server; the last page is saved as
    `screenshots/<test-name>.png` when the test ends (pass or fail). Any console error, uncaught
    script error or Content Security Policy violation on any page the test visits fails it
    (`page.problems` lists them)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(script=REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.shot = lambda step: _screenshot(page, request, step)
    page.problems = []
    page.on("console", lambda message: _console(page, message))
    page.on("pageerror", lambda error: page.problems.append(f"{page.url}: uncaught {error}"))
    yield page
    _screenshot(page, request, None)
    context.close()
    assert not page.problems, "the pages logged errors:\n" + "\n".join(page.problems)


def _console(page, message) -> None:
    if message.type == "error" and not ASKED_FOR.match(message.text):
        page.problems.append(f"{page.url}: {message.text}")


def _screenshot(page, request, step: str | None):
    SCREENSHOTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    with contextlib.suppress(Exception):  # noqa: BLE001 - a crashed page still lets the test report its failure
        # caret="initial": Playwright hides the caret with a style of its own, which the CSP refuses.
        page.screenshot(path=SCREENSHOTS / f"{name}{'-' + step if step else ''}.png", full_page=True, caret="initial")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The real login form and backend, with a hasher that does not take a second per sign-in on a
    busy machine (PBKDF2's iterations are the point in production, not here)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(transactional_db):
    """A user with a password in `group` ("admin" or "analyst"). Real commits (`transactional_db`, as
    `live_server` asks): the live server's thread has a database connection of its own."""
    from django.contrib.auth.models import Group, User

    def make(group: str, *, username: str | None = None) -> User:
        user = User.objects.create_user(username or group, password=PASSWORD)
        user.groups.add(Group.objects.get_or_create(name=group)[0])
        return user

    return make


@pytest.fixture
def sign_in(page, user):
    """Sign in through the login form as a new member of `group`; lands on the memory list."""
    from playwright.sync_api import expect

    def go(group: str = "admin"):
        account = user(group)
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(account.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/memories/$"))
        return account

    return go
