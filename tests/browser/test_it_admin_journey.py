"""The IT admin journey (issue 6): the setup portal ``/setup/{key}``.

An org's IT admin has no hubgate account, only the one-time link the operator
made with ``hubgate sso setup-link``. In the browser they give hubgate their
identity provider's details, copy hubgate's values into the IdP, run a test
sign-in at the IdP and read back what hubgate received (and the role it would
give), then activate the connection; the link is then spent.

Twice, each time for an org of its own made through the ``hubgate`` CLI: with
SimpleSAMLphp (the IdP's metadata XML pasted into the SAML form, hubgate's SP
registered at the IdP from the SP metadata URL the page shows) and with the npm
oidc-provider (issuer, client id and secret in the OIDC form; the provider is
restarted knowing the redirect URI the page shows). One hubgate server for the
module; each IdP starts only for the test that needs it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import expect, screenshot
from tests.e2e.conftest import _hubgate_env, running_server
from tests.e2e.idp import running_idp, simplesamlphp_missing
from tests.e2e.oidc_provider import require_provider, running_provider
from tests.e2e.test_saml_simplesamlphp import HUBGATE_CLI, SERVER_ENV

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Locator, Page

    from tests.e2e.idp import IdpInfo
    from tests.e2e.oidc_provider import ProviderInfo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass(frozen=True)
class Hub:
    """The module's hubgate server and the environment its CLI runs in."""

    url: str
    env: Mapping[str, str]

    def cli_json(self, *args: str) -> Any:
        done = subprocess.run(
            [*HUBGATE_CLI, *args, "--json"], env=dict(self.env), capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"hubgate {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    def org_with_setup_link(self, name: str, display_name: str) -> str:
        """``name`` with its domain ``{name}.test`` verified and an admin, no connection;
        returns the setup link the operator sends to the org's IT admin."""
        admin = f"admin@{name}.test"
        self.cli_json("user", "create", admin)
        self.cli_json("org", "create", name, "--admin", admin, "--display-name", display_name)
        self.cli_json("domain", "add", "--org", name, f"{name}.test")
        verified = self.cli_json("domain", "verify", "--org", name, f"{name}.test")
        assert verified["verified"] is True, verified
        link = self.cli_json("sso", "setup-link", "--org", name, "--email", f"it@{name}.test")
        url = link["url"]
        assert isinstance(url, str) and url.startswith(f"{self.url}/setup/"), link
        return url

    def connections(self, org: str) -> list[tuple[str, str]]:
        """(kind, state) of each of the org's connections."""
        listed = self.cli_json("sso", "connection", "list", "--org", org)
        return [(c["kind"], c["state"]) for c in listed]


@pytest.fixture(scope="module")
def hub(module_database: str) -> Iterator[Hub]:
    with running_server(module_database, SERVER_ENV) as url:
        yield Hub(url, _hubgate_env(module_database, url, SERVER_ENV))


@pytest.fixture
def simplesamlphp() -> Iterator[IdpInfo]:
    missing = simplesamlphp_missing()
    if missing:
        pytest.skip(missing)
    with running_idp() as idp:
        yield idp


@pytest.fixture
def provider() -> Iterator[ProviderInfo]:
    require_provider()
    with running_provider() as info:
        yield info


# -- what the portal shows ------------------------------------------------------------


def fact(scope: Page | Locator, term: str) -> Locator:
    """The ``dd`` that gives the value of ``term`` (the ``dt`` before it)."""
    dt = scope.get_by_role("term").filter(has_text=re.compile(f"^{re.escape(term)}"))
    expect(dt).to_have_count(1)
    return dt.locator("xpath=following-sibling::dd[1]")


def copied_value(page: Page, term: str) -> str:
    """Press the Copy button by the value the connection page gives for ``term``
    and return what reached the clipboard, after checking it is the text shown."""
    dd = fact(page, term)
    dd.get_by_role("button", name="Copy").click()
    expect(dd.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert isinstance(copied, str)
    assert copied == dd.locator("code").inner_text().strip()
    return copied


def allow_clipboard(page: Page, origin: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)


def last_test_result(page: Page) -> Locator:
    return page.get_by_role("region", name="3. Test sign-in").get_by_role("status")


def open_portal(page: Page, url: str, display_name: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Connect {display_name} to your identity provider"
    )


def check_identity_and_activate(
    page: Page, kind: str, connection_url: str, email: str, groups: list[str], role: str
) -> None:
    """From the connection page: the test sign-in must already have happened at the
    IdP; check the identity page, come back, read the result, activate."""
    vouched = page.get_by_role("heading", name="Your identity provider vouched for you")
    expect(vouched).to_be_visible()
    expect(fact(page, "Email")).to_have_text(email)
    for group in groups:
        expect(fact(page, "Groups").get_by_text(group, exact=True)).to_be_visible()
    page.get_by_role("link", name="Continue").click()

    expect(page).to_have_url(connection_url)
    result = last_test_result(page)
    expect(result.get_by_role("heading")).to_contain_text("The last test sign-in worked")
    expect(fact(result, "Email")).to_have_text(email)
    for group in groups:
        expect(fact(result, "Groups").get_by_text(group, exact=True)).to_be_visible()
    expect(fact(result, "Would get")).to_have_text(f"role {role}")
    screenshot(page, f"it-admin-{kind}-tested")
    page.get_by_role("button", name="Activate the connection").click()


def assert_active_and_link_spent(page: Page, kind: str, display_name: str, setup_url: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Single sign-on for {display_name} is active"
    )
    screenshot(page, f"it-admin-{kind}-active")
    page.goto(setup_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This setup link was used to activate a connection. Ask your contact for a new one."
    )
    expect(page.get_by_role("button", name="Create SAML connection")).to_have_count(0)


# -- the journeys -----------------------------------------------------------------------


def test_saml_from_simplesamlphp_metadata_tested_and_activated(
    page: Page, hub: Hub, simplesamlphp: IdpInfo
) -> None:
    setup_url = hub.org_with_setup_link("hooli", "Hooli")
    hub.cli_json("sso", "role-map", "--org", "hooli", "--map", "groups=hooli-it:admin")
    ivy = simplesamlphp.set_user(
        "ivy", email="ivy@hooli.test", name="Ivy Iyer", groups=["hooli-it", "staff"]
    )

    allow_clipboard(page, hub.url)
    open_portal(page, setup_url, "Hooli")
    expect(page.get_by_text("it@hooli.test")).to_be_visible()
    saml = page.get_by_role("region", name="SAML 2.0")
    saml.get_by_label("or paste the metadata XML").fill(simplesamlphp.metadata_xml())
    saml.get_by_role("button", name="Create SAML connection").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(setup_url)}/connections/\d+$"))
    connection_url = page.url
    connection_id = connection_url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^SAML connection\s+draft$")
    )
    base = f"{hub.url}/sso/saml/{connection_id}"
    assert copied_value(page, "Entity ID") == f"{base}/metadata"
    assert copied_value(page, "ACS URL") == f"{base}/acs"
    sp_metadata_url = copied_value(page, "SP metadata URL")
    # What the IT admin does at the IdP: give it hubgate's SP metadata.
    sp_metadata = httpx.get(sp_metadata_url, timeout=10.0)
    assert sp_metadata.status_code == 200, sp_metadata.text
    simplesamlphp.register_sp_metadata(sp_metadata.text)
    expect(page.get_by_text("Run a successful test sign-in first.")).to_be_visible()

    page.get_by_role("link", name="Run a test sign-in").click()
    expect(page).to_have_url(re.compile(f"^{re.escape(simplesamlphp.base_url)}/"))
    page.get_by_label("Username").fill(ivy.username)
    page.get_by_label("Password", exact=True).fill(ivy.password)
    page.get_by_role("button", name="Login").click()

    check_identity_and_activate(
        page, "saml", connection_url, "ivy@hooli.test", list(ivy.groups), "admin"
    )
    assert_active_and_link_spent(page, "saml", "Hooli", setup_url)
    assert hub.connections("hooli") == [("saml", "active")]


def test_oidc_with_oidc_provider_tested_and_activated(
    page: Page, hub: Hub, provider: ProviderInfo
) -> None:
    setup_url = hub.org_with_setup_link("piedpiper", "Pied Piper")
    richard = provider.set_account(
        "richard", email="richard@piedpiper.test", name="Richard Hendricks", groups=["engineers"]
    )

    allow_clipboard(page, hub.url)
    open_portal(page, setup_url, "Pied Piper")
    oidc = page.get_by_role("region", name="OpenID Connect")
    oidc.get_by_label("Issuer URL").fill(provider.issuer)
    oidc.get_by_label("Client ID").fill(provider.client_id)
    oidc.get_by_label("Client secret").fill(provider.client_secret)
    expect(oidc.get_by_label("Client authentication")).to_have_value("client_secret_basic")
    oidc.get_by_role("button", name="Create OIDC connection").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(setup_url)}/connections/\d+$"))
    connection_url = page.url
    connection_id = connection_url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^OIDC connection\s+draft$")
    )
    redirect_uri = copied_value(page, "Redirect URI")
    assert redirect_uri == f"{hub.url}/sso/oidc/{connection_id}/callback"
    assert fact(page, "Issuer").inner_text() == provider.issuer
    # What the IT admin does at the provider: register the redirect URI (the
    # provider reads its clients at start only).
    provider.restart(redirect_uris=[redirect_uri])

    page.get_by_role("link", name="Run a test sign-in").click()
    expect(page).to_have_url(re.compile(f"^{re.escape(provider.issuer)}/interaction/"))
    page.get_by_label("Login").fill(richard.login)
    page.get_by_label("Password").fill(richard.password)
    page.get_by_role("button", name="Sign in").click()

    # No mapping for "engineers": the portal names the org's default role.
    check_identity_and_activate(
        page, "oidc", connection_url, "richard@piedpiper.test", ["engineers"], "write (the default)"
    )
    assert_active_and_link_spent(page, "oidc", "Pied Piper", setup_url)
    assert hub.connections("piedpiper") == [("oidc", "active")]
