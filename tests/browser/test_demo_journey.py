"""The demo journey (issue 6): ``hubgate demo`` and the first step of its tour.

The demo runs as a real process on two free loopback ports with a temporary
SQLite file, as someone trying hubgate would start it; the test reads the
guided tour it prints (the password, the URL to open, the email to enter) and
follows its first step in the browser: email-first sign-in at /login, the
development IdP's login page (SAML), back in hubgate as alice, admin of acme,
whose team's dataset the tour says opens. Ctrl+C (SIGINT) then stops hubgate
and the dev IdP together.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import expect, screenshot
from tests.e2e.conftest import HOST, _healthy, _listening, _wait_until, free_port
from tests.e2e.test_saml_simplesamlphp import HUBGATE_CLI

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST_HASHING = {"HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}
STOP_SECONDS = 20


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    idp_port: int

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def idp_url(self) -> str:
        return f"http://{HOST}:{self.idp_port}"

    def printed(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl+C, as at a terminal; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(STOP_SECONDS)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """``hubgate demo`` from a clean folder, no HUBGATE_* of the caller's; killed at
    the end if the test did not stop it."""
    port, idp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")} | FAST_HASHING
    log = tmp_path / "demo.log"
    command = [*HUBGATE_CLI, "demo", "--port", str(port), "--idp-port", str(idp_port),
               "--db", str(tmp_path / "demo.db")]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    started = Demo(process, log, port, idp_port)
    try:
        _wait_until(lambda: _healthy(started.idp_url), process, "the dev IdP", log)
        _wait_until(lambda: _healthy(started.base_url), process, "hubgate demo", log)
        yield started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_SECONDS)


@dataclass(frozen=True)
class FirstStep:
    """What the tour's first step tells the reader to do."""

    login_url: str
    email: str
    password: str
    opens: str


def first_step(tour: str) -> FirstStep:
    password = re.search(
        r"One password for every account, in hubgate and at the dev IdP: (\S+)", tour
    )
    step = re.search(r" 1\. Open (\S+) and enter (\S+):", tour)
    opens = re.search(r"(\S+) opens\.\n 2\.", tour)
    assert password and step and opens, tour
    return FirstStep(step[1], step[2], password[1], opens[1])


def test_the_tours_first_sign_in_works_in_the_browser(page: Page, demo: Demo) -> None:
    tour = demo.printed()
    assert f"hubgate demo: {demo.base_url}" in tour, tour
    assert f"dev IdP:      {demo.idp_url}" in tour, tour
    step = first_step(tour)
    assert step.login_url == f"{demo.base_url}/login"
    assert step.email == "alice@acme.test"

    page.goto(step.login_url)
    page.get_by_label("Email").fill(step.email)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(re.compile(f"^{re.escape(demo.idp_url)}/"))
    expect(page.get_by_role("alert")).to_contain_text("NOT FOR PRODUCTION")
    page.get_by_label("Email").fill(step.email)  # (hubgate's login hint filled it in)
    page.get_by_label("Password").fill(step.password)
    screenshot(page, "demo-journey-dev-idp")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{demo.base_url}/")
    account = page.get_by_role("navigation", name="Account")
    expect(account).to_contain_text(step.email)
    orgs = page.get_by_role("region", name="My organizations")
    acme = orgs.get_by_role("listitem").filter(has_text="acme")
    expect(acme).to_contain_text("admin")
    expect(acme).to_contain_text("SSO:")
    screenshot(page, "demo-journey-signed-in")

    page.goto(step.opens)
    expect(page.get_by_role("heading", level=1)).to_have_text("acme/eval-set")

    # The API docs the tour points to work offline: nothing is asked of another site.
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{demo.base_url}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("hubgate")
    expect(page.get_by_text("/api/v1/me", exact=True).first).to_be_visible()
    # An operation opened draws Swagger UI's data: icons, which its page's CSP allows.
    page.locator(".opblock-summary").first.click()
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    assert asked and all(url.startswith(f"{demo.base_url}/") for url in asked), asked
    screenshot(page, "demo-journey-api-docs")

    status = demo.interrupt()
    assert status == 0, demo.printed()
    assert not _listening(demo.port) and not _listening(demo.idp_port), demo.printed()
