"""Browser fixtures: Playwright for Python driving Debian's Chromium.

- ``chromium`` (session): one headless Chromium for the whole run, launched from
  :data:`CHROMIUM` (``/usr/bin/chromium``, or ``HUBGATE_TEST_CHROMIUM``) with a
  fresh temporary profile that Playwright makes and deletes. Playwright cannot
  download a browser of its own here, so scripts/install-system-deps.sh installs
  Debian's ``chromium``; without it, or without the ``playwright`` package, every
  test that asks for a browser is skipped with the reason.
- ``page`` (per test): a new page in a new browser context, so each test starts
  with no cookies, no storage and no IdP session. When the test ends, whatever
  the outcome, the page it ended on is saved as ``<test name>.png`` under
  :data:`ARTIFACTS` (``test-artifacts/browser/``, git-ignored), and the summary
  at the end of the run names the folder and the files. Every journey is also a
  Content-Security-Policy check: a page that the policy stopped from loading,
  running or sending something (Chromium says so on the console) fails the test.

The hubgate server, the SimpleSAMLphp IdP and the orgs come from the SSO policy
end-to-end tests (tests/e2e/test_sso_policy_saml.py): one hubgate and one IdP per
test module, ``acme`` in managed mode and ``initech`` in basic mode, each made
through the ``hubgate`` CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Fixtures, re-exported: one hubgate and one IdP per test module, and the orgs.
from tests.e2e.test_sso_policy_saml import acme, initech, module_database, saml

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the tests that need it skip (see ``chromium``)
    expect = sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

    from tests.e2e.idp import IdpInfo, IdpUser

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "acme",
    "csp_violations",
    "expect",
    "initech",
    "log_in_at_simplesamlphp",
    "module_database",
    "saml",
    "screenshot",
]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("HUBGATE_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless in a container as root (no sandbox, no GPU), and nothing of its own on
# the network: without the background-networking flags this closed network refuses
# Chromium's own connections (updates, sync, field trials) and it misbehaves.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# Playwright's default for each expect() and each action; a sign-in crosses two
# servers and an auto-submitting form, so allow more than its 5 s.
WAIT_MS = 15_000

_saved: list[Path] = []


def browser_missing() -> str | None:
    """Why no browser test can run here, or ``None`` when they can."""
    if sync_playwright is None:
        return "playwright is not installed (pip install -c constraints.txt -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (scripts/install-system-deps.sh installs Debian's chromium)"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    assert expect is not None and sync_playwright is not None
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context and page; the last page is saved as the test's screenshot."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    try:
        fresh = context.new_page()
        refused = csp_violations(fresh)
        yield fresh
        screenshot(fresh, request.node.name)
    finally:
        context.close()
    assert not refused, "the Content-Security-Policy refused:\n" + "\n".join(refused)


def csp_violations(page: Page) -> list[str]:
    """What a Content-Security-Policy refuses on ``page`` from now on, each as the
    console message Chromium writes ("Refused to ... because it violates the
    following Content Security Policy directive ..."), with the page's URL."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            seen.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    return seen


def screenshot(page: Page, name: str) -> Path:
    """Save the whole of ``page`` (not only the viewport) as ``ARTIFACTS/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{_file_name(name)}.png"
    page.screenshot(path=str(target), full_page=True)
    _saved.append(target)
    return target


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def log_in_at_simplesamlphp(page: Page, idp: IdpInfo, user: IdpUser) -> None:
    """On the IdP's login form (the page must get there), sign in as ``user``; the
    IdP's auto-submitting form then carries the SAMLResponse back to hubgate."""
    expect(page).to_have_url(re.compile(f"^{re.escape(idp.base_url)}/"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Login").click()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _saved:
        return
    terminalreporter.section("browser screenshots")
    terminalreporter.write_line(f"saved under {ARTIFACTS}:")
    for path in _saved:
        terminalreporter.write_line(f"  {path.name}")
