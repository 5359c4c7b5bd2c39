"""OpenID Connect logout against the real oidc-provider (tests/e2e/oidc/provider.mjs,
with its RP-Initiated Logout and Back-Channel Logout features on) and two hubgate
server processes, A and B, sharing one database.

The client registers A's ``post_logout_redirect_uri`` and A's back-channel
logout URI (both printed for the connection by :func:`~hubgate.sso.flows.
oidc_logout.registration`); it sends ``sid`` in id_tokens and logout tokens
(``backchannel_logout_session_required``). The org ``acme`` is managed, so alice
(``alice@acme.test``) gets her account at her first sign-in.

- RP-initiated: sign in at A, press sign out: the session here ends at once,
  the browser goes to the provider's end_session_endpoint, confirms there and
  comes back to A's logged-out page, which says the provider signed her out;
  the provider then asks her to sign in again.
- Back-channel: sign in at A, use the session at B, end the provider's session
  at the provider itself: it POSTs a logout_token to A, and the session no
  longer works at B (nor at A).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import World
from tests.e2e.conftest import _hubgate_env, running_server
from tests.e2e.idp import Browser, HtmlForm, parse_forms
from tests.e2e.oidc_provider import (
    ACCOUNTS,
    login_form,
    provider_login,
    require_provider,
    running_provider,
)
from tests.e2e.test_oidc_provider import ADMIN, HTML, JSON, ORG, SERVER_ENV, Connection, Oidc

pytestmark = pytest.mark.e2e

ALICE = ACCOUNTS["alice"]


@dataclass
class Two:
    """hubgate A (where people sign in, and the registered logout URIs point) and
    hubgate B, on one database; the provider; the connection."""

    oidc: Oidc
    b: str
    connection: Connection

    @property
    def a(self) -> str:
        return self.oidc.hubgate

    @property
    def logged_out(self) -> str:
        return f"{self.a}/sso/oidc/{self.connection.id}/logged-out"

    @property
    def backchannel(self) -> str:
        return f"{self.a}/sso/oidc/{self.connection.id}/backchannel-logout"


def _set_up(oidc: Oidc, b: str) -> Two:
    """Domain acme.test verified, the OIDC connection active (an operator's skip of
    the test sign-in), acme managed; the provider's client registers A's logout URIs."""
    oidc.cli_json("domain", "add", "--org", ORG, "acme.test")
    oidc.cli_json("domain", "verify", "--org", ORG, "acme.test")
    connection = oidc.add_connection()
    two = Two(oidc, b, connection)
    oidc.provider.restart(
        post_logout_redirect_uris=[two.logged_out], backchannel_logout_uri=two.backchannel
    )
    activated = oidc.cli_json("sso", "connection", "activate", str(connection.id), "--skip-test")
    assert isinstance(activated, dict) and activated["state"] == "active", activated
    oidc.cli_json("sso", "mode", "--org", ORG, "managed")
    return two


@pytest.fixture
def two(database_url: str, world: World) -> Iterator[Two]:
    require_provider()
    world.org(ORG, world.user(ADMIN))
    with (
        running_provider() as provider,
        running_server(database_url, SERVER_ENV) as a,
        running_server(database_url, SERVER_ENV) as b,
    ):
        oidc = Oidc(hubgate=a, provider=provider, env=_hubgate_env(database_url, a, SERVER_ENV))
        try:
            yield _set_up(oidc, b)
        finally:
            for browser in oidc.browsers:
                browser.client.close()


def sign_in_at_a(two: Two) -> Browser:
    """alice, from a fresh browser: A's start URL, the provider's form, A's callback."""
    browser = two.oidc.browser()
    started = browser.get(f"{two.a}/sso/{ORG}/start?next=/{ORG}", follow=False)
    assert started.status_code == 303, started.text
    page = browser.follow(started)
    redirect = provider_login(browser, page, ALICE, stop_at=two.connection.redirect_uri)
    assert redirect.is_redirect, f"{redirect.status_code} at {redirect.url}:\n{redirect.text}"
    callback = str(redirect.url.join(redirect.headers["location"]))
    answered = browser.request("GET", callback, headers=JSON, follow=False)
    assert answered.status_code == 200, answered.text
    assert answered.json()["org"] == ORG
    return browser


def works_at(browser: Browser, base_url: str) -> bool:
    answered = browser.client.get(f"{base_url}/api/v1/me")
    assert answered.status_code in (200, 401), answered.text
    return answered.status_code == 200


def confirm_form(page: httpx.Response) -> HtmlForm:
    """The provider's "sign me out?" form (logout=yes inside it)."""
    forms = [f for f in parse_forms(page.text, str(page.url)) if f.action.endswith("/confirm")]
    assert len(forms) == 1, f"{page.status_code} at {page.url}:\n{page.text[:2000]}"
    assert forms[0].fields.get("logout") == "yes" and forms[0].fields.get("xsrf")
    return forms[0]


def backchannel_deliveries(two: Two) -> list[str]:
    log = two.oidc.provider.log_file.read_text(errors="replace")
    return [line for line in log.splitlines() if line.startswith("backchannel ")]


def test_rp_initiated_sign_out_ends_the_session_here_and_at_the_provider(two: Two) -> None:
    browser = sign_in_at_a(two)
    home = browser.request("GET", f"{two.a}/", headers=HTML, follow=False).text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', home)
    assert csrf is not None, home[:2000]
    out = browser.request("POST", f"{two.a}/logout", data={"csrf_token": csrf.group(1)},
                          follow=False)  # fmt: skip
    assert out.status_code == 303, out.text
    location = out.headers["location"]
    end_session = two.oidc.provider.discovery()["end_session_endpoint"]
    assert location.startswith(end_session + "?"), location
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["client_id"] == two.oidc.provider.client_id
    assert query["post_logout_redirect_uri"] == two.logged_out
    assert query["id_token_hint"].count(".") == 2 and query["state"]
    assert not works_at(browser, two.a), "the session here ended before the browser left"

    confirm = browser.follow(out)
    back = browser.submit(confirm_form(confirm), follow=False)
    assert back.is_redirect, back.text
    returned = str(back.url.join(back.headers["location"]))
    assert returned == f"{two.logged_out}?state={query['state']}", returned
    page = browser.follow(back)
    assert page.status_code == 200 and str(page.url).startswith(two.logged_out)
    assert f"and of <strong>{two.oidc.provider.issuer}</strong>" in page.text, page.text

    # The provider's session is gone: a new sign-in meets its login form again.
    again = browser.get(f"{two.a}/sso/{ORG}/start?next=/{ORG}", follow=False)
    met = browser.follow(again, stop_at=two.connection.redirect_uri)
    assert not met.is_redirect and login_form(met) is not None, met.text[:2000]


def test_back_channel_logout_ends_the_session_on_every_instance(two: Two) -> None:
    browser = sign_in_at_a(two)
    bystander = sign_in_at_a(two)  # another browser, another provider session
    assert works_at(browser, two.b), "B serves the session A opened"
    end_session = two.oidc.provider.discovery()["end_session_endpoint"]
    confirm = browser.get(end_session)  # at the provider itself, no hint
    done = browser.submit(confirm_form(confirm))
    assert done.status_code == 200 and 'id="signed-out"' in done.text, done.text[:2000]

    deliveries = backchannel_deliveries(two)
    assert len(deliveries) == 1 and deliveries[0].startswith("backchannel ok "), deliveries
    assert f"sub={ALICE.sub}" in deliveries[0]
    assert not works_at(browser, two.b) and not works_at(browser, two.a)
    assert works_at(bystander, two.b), "the logout token named one provider session (sid)"
    events = two.oidc.cli_json("audit", "--org", ORG)
    assert isinstance(events, list)
    logouts = [e for e in events if e["action"] == "sso.logout"]
    assert [e["reason"] for e in logouts] == ["oidc_backchannel_logout"], logouts
