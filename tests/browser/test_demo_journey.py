"""The demo journey (issues 6 and 20): ``hubgate demo`` and its printed tour.

The demo runs as a real process on two free loopback ports with a temporary
SQLite file, as someone trying hubgate would start it; each test reads the
guided tour it prints (the password, the URLs to open, the emails to enter,
the CLI commands to run) and follows it in the browser, asserting what the
tour says happens:

- step 1: email-first sign-in at /login, the development IdP's login page
  (SAML), back on hubgate's home page as alice, admin of acme, whose team's
  dataset opens; the API docs; Ctrl+C (SIGINT) stops hubgate and the dev IdP;
- steps 2 to 5: carol made just in time, dave with the default team only, bob's
  password then SSO through the banner (OpenID Connect), dan's public-only view,
  the audit logs;
- step 6: the setup portal against the demo's own dev IdP: the link from the
  printed CLI command (run in the demo's folder, as printed), a SAML connection
  from the dev IdP's metadata URL, the test sign-in there, activation; then an
  OIDC connection with the client id and secret the tour prints.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hubgate.devidp.process import stop
from tests.browser.conftest import expect, screenshot
from tests.e2e.conftest import HOST, _healthy, _listening, _wait_until
from tests.e2e.test_saml_simplesamlphp import HUBGATE_CLI
from tests.ports import free_port

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST_HASHING = {"HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}
STOP_SECONDS = 20


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    idp_port: int
    folder: Path

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
    """``hubgate demo`` from a clean folder, no HUBGATE_* of the caller's; stopped
    at the end if the test did not stop it: by SIGTERM, so that it stops its dev
    IdP too (a SIGKILL left the IdP running, orphaned), and killed only if that
    fails."""
    port, idp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")} | FAST_HASHING
    log = tmp_path / "demo.log"
    command = [*HUBGATE_CLI, "demo", "--port", str(port), "--idp-port", str(idp_port),
               "--db", str(tmp_path / "demo.db")]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    started = Demo(process, log, port, idp_port, tmp_path)
    try:
        _wait_until(lambda: _healthy(started.idp_url), process, "the dev IdP", log)
        _wait_until(lambda: _healthy(started.base_url), process, "hubgate demo", log)
        yield started
    finally:
        stop(process, STOP_SECONDS)


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


# -- the rest of the printed tour --------------------------------------------------------


def step(tour: str, number: int) -> str:
    """The text of the tour's step ``number``, on one line (spaces collapsed)."""
    found = re.search(rf"\n {number}\. (.*?)(?=\n \d\. |\n\n)", tour, re.DOTALL)
    assert found is not None, tour
    return " ".join(found[1].split())


def told(pattern: str, text: str) -> tuple[str, ...]:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in: {text}"
    return found.groups()


def sign_in_through_the_dev_idp(page: Page, demo: Demo, email: str, password: str) -> None:
    """At the dev IdP's login page (the page must get there): sign in as ``email``."""
    expect(page).to_have_url(re.compile(f"^{re.escape(demo.idp_url)}/"))
    expect(page.get_by_role("alert")).to_contain_text("NOT FOR PRODUCTION")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def email_first(page: Page, login_url: str, email: str) -> None:
    page.goto(login_url)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()


def sign_in_with_password(page: Page, login_url: str, email: str, password: str) -> None:
    email_first(page, login_url, email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.base_url}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def my_org(page: Page, demo: Demo, org: str) -> Locator:
    """The home page's entry for ``org`` under "My organizations"."""
    page.goto(f"{demo.base_url}/")
    orgs = page.get_by_role("region", name="My organizations")
    return orgs.get_by_role("listitem").filter(has_text=org)


def teams_in(page: Page, demo: Demo, org: str) -> set[str]:
    """The signed-in person's teams in ``org``, as GET /api/v1/me tells them."""
    me = page.request.get(f"{demo.base_url}/api/v1/me").json()
    (found,) = [o for o in me["orgs"] if o["org"] == org]
    return set(found["teams"])


def opens(page: Page, url: str) -> None:
    page.goto(url)
    org, _kind, name = url.split("/")[-3:]
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{org}/{name}")


def stays_closed(page: Page, url: str) -> None:
    answer = page.goto(url)
    assert answer is not None and answer.status in (401, 403, 404), (url, answer and answer.status)
    org, _kind, name = url.split("/")[-3:]
    expect(page.get_by_role("heading", level=1)).not_to_have_text(f"{org}/{name}")


def test_the_printed_tour_steps_2_to_5_hold_in_the_browser(page: Page, demo: Demo) -> None:
    tour = demo.printed()
    first = first_step(tour)
    password, login_url = first.password, first.login_url

    # 2. carol, just in time: role write and team research; dave: read, everyone only.
    two = step(tour, 2)
    carol, role, team = told(
        r"do the same as (\S+): she had no account; it is made just in time, "
        r"with role (\w+) \(group engineers\) and team (\w+)\.", two,
    )  # fmt: skip
    dave, dave_role, dave_team, dave_opens, dave_closed = told(
        r"(\S+) \(group staff\) gets acme's default role, (\w+), and its default team, (\w+), "
        r"only: (\S+) opens for him, (\S+) does not\.", two,
    )  # fmt: skip
    email_first(page, login_url, carol)
    sign_in_through_the_dev_idp(page, demo, carol, password)
    expect(page).to_have_url(f"{demo.base_url}/")
    expect(my_org(page, demo, "acme")).to_contain_text(role)
    opens(page, first.opens)  # research's dataset: carol is in the team
    assert team in teams_in(page, demo, "acme")
    sign_out(page, demo)

    email_first(page, login_url, dave)
    sign_in_through_the_dev_idp(page, demo, dave, password)
    expect(page).to_have_url(f"{demo.base_url}/")
    expect(my_org(page, demo, "acme")).to_contain_text(dave_role)
    assert teams_in(page, demo, "acme") == {dave_team}
    opens(page, dave_opens)
    stays_closed(page, dave_closed)
    screenshot(page, "demo-tour-2-dave-refused")
    sign_out(page, demo)

    # 3. bob: his password, then globex's SSO banner through the dev IdP (OIDC).
    three = step(tour, 3)
    bob, bob_login = told(r"(\S+) has a hubgate password: sign in with it at (\S+)\.", three)
    (org_url,) = told(r"globex is in basic mode: (\S+) shows the SSO banner", three)
    pricing, bob_role = told(r"then (\S+) opens, and bob is (\w+) \(hub-admins\)", three)
    sign_in_with_password(page, bob_login, bob, password)
    expect(page).to_have_url(f"{demo.base_url}/")
    page.goto(org_url)
    banner = page.get_by_role("region", name="Single sign-on")
    expect(banner).to_contain_text("requires single sign-on")
    stays_closed(page, pricing)
    page.goto(org_url)
    banner.get_by_role("link", name="Continue with single sign-on").click()
    sign_in_through_the_dev_idp(page, demo, bob, password)
    expect(page).to_have_url(org_url)
    expect(banner).to_have_count(0)
    opens(page, pricing)
    screenshot(page, "demo-tour-3-bob-after-sso")
    expect(my_org(page, demo, "globex")).to_contain_text(bob_role)

    # 5 (globex): the audit log, as its admin, holds bob's SSO sign-in.
    five = step(tour, 5)
    acme_audit, globex_audit = told(r"every step: (\S+) and (\S+) \(as an admin\)", five)
    page.goto(globex_audit)
    audit = page.get_by_role("region", name="Audit log")
    expect(audit).to_contain_text(bob)
    sign_out(page, demo)

    # 4. dan: a password and no org; public models only.
    four = step(tour, 4)
    dan, public, private = told(
        r"(\S+) \(a password, no org\) sees public models only: (\S+) opens, (\S+) does not\.",
        four,
    )  # fmt: skip
    sign_in_with_password(page, login_url, dan, password)
    expect(page).to_have_url(f"{demo.base_url}/")
    opens(page, public)
    stays_closed(page, private)
    sign_out(page, demo)

    # 5 (acme): alice again; acme's audit log shows carol's and dave's first sign-ins.
    email_first(page, login_url, first.email)
    sign_in_through_the_dev_idp(page, demo, first.email, password)
    expect(page).to_have_url(f"{demo.base_url}/")
    page.goto(acme_audit)
    audit = page.get_by_role("region", name="Audit log")
    expect(audit).to_contain_text(carol)
    expect(audit).to_contain_text(dave)
    screenshot(page, "demo-tour-5-acme-audit")


# -- step 6: the setup portal against the demo's own dev IdP -----------------------------


def run_printed(demo: Demo, line: str) -> str:
    """A command line the tour prints, run as printed in the demo's folder from a
    shell with no HUBGATE_* of its own (the demo's .env supplies them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    done = subprocess.run(
        shlex.split(line), cwd=demo.folder, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{line}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_setup_portal_is_finished_with_the_demos_own_idp(page: Page, demo: Demo) -> None:
    tour = demo.printed()
    password = first_step(tour).password
    (client_id, client_secret) = told(
        r"OIDC client for the setup portal: client id (\S+), secret (\S+)", tour
    )
    six = re.search(r"\n 6\. .*?(?=\n\n)", tour, re.DOTALL)
    assert six is not None, tour
    commands = re.findall(r"^ {6}(\S.*)$", six[0], re.MULTILINE)
    setup_link, outbox, audit = commands
    assert " sso setup-link " in setup_link and outbox.endswith(" mail outbox"), commands
    text = " ".join(six[0].split())
    metadata_url, issuer, said_client, tester = told(
        r"create a SAML connection from the metadata URL (\S+) \(or an OIDC one: issuer (\S+), "
        r"client id (\S+) and the secret above\); run the test sign-in at the dev IdP as (\S+);",
        text,
    )  # fmt: skip
    assert said_client == client_id

    url = run_printed(demo, setup_link).strip()
    assert url.startswith(f"{demo.base_url}/setup/"), url
    assert url in run_printed(demo, outbox)

    # SAML from the dev IdP's metadata URL, tested there, activated.
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Connect Initech to your identity provider"
    )
    saml = page.get_by_role("region", name="SAML 2.0")
    saml.get_by_label("Metadata URL").fill(metadata_url)
    saml.get_by_role("button", name="Create SAML connection").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(url)}/connections/\d+$"))
    screenshot(page, "demo-setup-portal-saml-draft")
    try_and_activate(page, demo, tester, password)

    # OIDC with the client the tour prints, through a second link.
    second = run_printed(demo, setup_link).strip()
    page.goto(second)
    oidc = page.get_by_role("region", name="OpenID Connect")
    oidc.get_by_label("Issuer URL").fill(issuer)
    oidc.get_by_label("Client ID").fill(client_id)
    oidc.get_by_label("Client secret").fill(client_secret)
    oidc.get_by_role("button", name="Create OIDC connection").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(second)}/connections/\d+$"))
    screenshot(page, "demo-setup-portal-oidc-draft")
    try_and_activate(page, demo, tester, password)

    logged = run_printed(demo, audit)
    for action in ("setup.link_created", "sso.identity_verified", "sso.connection_activated",
                   "setup.link_used"):  # fmt: skip
        assert action in logged, logged


def try_and_activate(page: Page, demo: Demo, tester: str, password: str) -> None:
    """From a draft connection's page: the test sign-in at the dev IdP, what hubgate
    received, activation."""
    connection_url = page.url
    page.get_by_role("link", name="Run a test sign-in").click()
    sign_in_through_the_dev_idp(page, demo, tester, password)
    expect(
        page.get_by_role("heading", name="Your identity provider vouched for you")
    ).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(tester)
    page.get_by_role("link", name="Continue").click()
    expect(page).to_have_url(connection_url)
    result = page.get_by_role("region", name="3. Test sign-in").get_by_role("status")
    expect(result.get_by_role("heading")).to_contain_text("The last test sign-in worked")
    expect(result).to_contain_text("role admin")  # erin is in hub-admins
    screenshot(page, f"demo-setup-portal-tested-{connection_url.rsplit('/', 1)[1]}")
    page.get_by_role("button", name="Activate the connection").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Single sign-on for Initech is active"
    )
    screenshot(page, f"demo-setup-portal-active-{connection_url.rsplit('/', 1)[1]}")
