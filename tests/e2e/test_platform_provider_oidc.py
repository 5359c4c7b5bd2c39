"""A platform sign-in provider end to end: panva's oidc-provider (started by
tests/e2e/oidc_provider.py) added with ``hubgate provider add`` as an operator
would, and a real hubgate server; the "browser" is httpx with one cookie jar
per person, redirects followed by hand (tests/e2e/test_oidc_provider.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import World
from tests.e2e.idp import Browser
from tests.e2e.oidc_provider import ACCOUNTS, Account, provider_login
from tests.e2e.test_oidc_provider import JSON, Oidc, follow_to_callback, hubgate_and_provider

pytestmark = pytest.mark.e2e


@pytest.fixture
def oidc(database_url: str, world: World) -> Iterator[Oidc]:
    with hubgate_and_provider(database_url, world) as state:
        yield state


def add_provider(oidc: Oidc) -> tuple[int, str]:
    """``hubgate provider add``; the provider then restarted with the printed redirect URI."""
    printed = oidc.cli_json(
        "provider", "add", "--oidc-issuer", oidc.provider.issuer, "--client-id",
        oidc.provider.client_id, "--client-secret-stdin", "--name", "Acme ID",
        stdin=oidc.provider.client_secret + "\n",
    )  # fmt: skip
    assert isinstance(printed, dict), printed
    provider_id, redirect_uri = int(printed["id"]), str(printed["redirect_uri"])
    assert redirect_uri == f"{oidc.hubgate}/sso/platform/{provider_id}/callback"
    assert oidc.provider.client_secret not in str(printed)
    oidc.provider.restart(redirect_uris=[redirect_uri])
    return provider_id, redirect_uri


def to_callback(
    oidc: Oidc, browser: Browser, provider_id: int, redirect_uri: str, account: Account
) -> httpx.Response:
    """The button on /login, the provider's form; its redirect to hubgate's callback."""
    login = browser.get(f"{oidc.hubgate}/login")
    href = f"/sso/platform/{provider_id}/start?next=/"
    assert "Continue with Acme ID" in login.text and href in login.text, login.text
    started = browser.get(f"{oidc.hubgate}{href}", follow=False)
    assert started.status_code == 303, started.text
    assert started.headers["location"].startswith(
        oidc.provider.discovery()["authorization_endpoint"] + "?"
    )
    redirect = provider_login(browser, browser.follow(started), account, stop_at=redirect_uri)
    assert redirect.is_redirect, f"{redirect.status_code} at {redirect.url}:\n{redirect.text}"
    return redirect


def test_a_vouched_address_signs_in_to_an_own_account_and_a_replay_is_refused(
    oidc: Oidc,
) -> None:
    provider_id, redirect_uri = add_provider(oidc)
    browser = oidc.browser()
    redirect = to_callback(oidc, browser, provider_id, redirect_uri, ACCOUNTS["alice"])
    signed = follow_to_callback(browser, redirect)
    assert signed.status_code == 200, signed.text
    me = browser.request("GET", f"{oidc.hubgate}/api/v1/me", headers=JSON, follow=False)
    assert me.status_code == 200 and "alice@acme.test" in me.text, me.text
    replayed = follow_to_callback(browser, redirect)
    assert replayed.status_code == 400 and replayed.json()["error"] == "oidc_state_invalid"
    # The same person again, from another browser: the link signs in the same account.
    again = oidc.browser()
    second = follow_to_callback(
        again, to_callback(oidc, again, provider_id, redirect_uri, ACCOUNTS["alice"])
    )
    assert second.json()["user_id"] == signed.json()["user_id"]


def test_an_unvouched_address_is_refused_with_its_reason(oidc: Oidc) -> None:
    provider_id, redirect_uri = add_provider(oidc)
    browser = oidc.browser()
    redirect = to_callback(oidc, browser, provider_id, redirect_uri, ACCOUNTS["carol"])
    refused = follow_to_callback(browser, redirect)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "provider_email_unverified"
    assert (
        browser.request("GET", f"{oidc.hubgate}/api/v1/me", headers=JSON, follow=False).status_code
        == 401
    )
