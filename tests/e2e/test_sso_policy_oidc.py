"""The organization SSO policy (issue 5) through OpenID Connect: the real
oidc-provider (tests/e2e/oidc_provider.py), and beside it SimpleSAMLphp for two
orgs with two IdPs.

Driven from the outside only, like tests/e2e/test_sso_policy_saml.py, whose org
helpers it reuses: one hubgate server, one oidc-provider and (for the two-IdP
test) one SimpleSAMLphp for the whole module; HTTP through
:class:`~tests.e2e.idp.Browser` and the provider's own login form; the
``hubgate`` CLI for what an operator does. The provider's accounts are changed
between sign-ins with ``set_account`` / ``remove_account`` (it reads them at
every lookup). The orgs:

- ``hooli`` (``hooli.test``) in managed mode on oidc-provider: JIT, the role
  mapping, the unverified email, the removed account;
- ``umbrella`` (``umbrella.test``) in basic mode on SimpleSAMLphp, and
  ``initrode`` (``initrode.test``) in basic mode on oidc-provider: one person,
  member of both.

Both OIDC connections use the provider's one client: each connection has its
own redirect URI (it holds the connection id), so the provider is restarted
with every redirect URI so far once a connection is added (oidc-provider reads
its clients at start; that ends its sessions, nothing else).

:class:`~tests.e2e.test_sso_policy_saml.PolicyOrg` and the checks beside it only
read ``hubgate`` from their first argument, so an OIDC org's view is built on
the :class:`~tests.e2e.test_oidc_provider.Oidc` state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import _hubgate_env, running_server
from tests.e2e.idp import Browser, running_idp, simplesamlphp_missing
from tests.e2e.oidc_provider import Account, provider_login, require_provider, running_provider
from tests.e2e.test_oidc_provider import HTML, JSON, SERVER_ENV, Oidc
from tests.e2e.test_saml_simplesamlphp import Saml
from tests.e2e.test_sso_policy_saml import (
    SESSION_COOKIE,
    PolicyOrg,
    assert_refused_changing_nothing,
    me,
    membership,
    module_database,  # noqa: F401  (the module-scoped fixture, used by `oidc`)
    password_of,
    sign_in,
    squat,
    sso_org,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


# -- one hubgate, one oidc-provider, one SimpleSAMLphp for the module ----------------


@pytest.fixture(scope="module")
def oidc(module_database: str) -> Iterator[Oidc]:  # noqa: F811
    require_provider()
    with running_provider() as provider, running_server(module_database, SERVER_ENV) as hubgate:
        state = Oidc(hubgate, provider, _hubgate_env(module_database, hubgate, SERVER_ENV))
        try:
            yield state
        finally:
            for browser in state.browsers:
                browser.client.close()


@pytest.fixture(scope="module")
def saml(oidc: Oidc) -> Iterator[Saml]:
    """SimpleSAMLphp beside the provider, for the same hubgate."""
    missing = simplesamlphp_missing()
    if missing:
        pytest.skip(missing)
    with running_idp() as idp:
        state = Saml(hubgate=oidc.hubgate, idp=idp, env=oidc.env)
        try:
            yield state
        finally:
            for browser in state.browsers:
                browser.client.close()


# -- OIDC orgs ------------------------------------------------------------------------


def callback_prefix(oidc: Oidc) -> str:
    return f"{oidc.hubgate}/sso/oidc/"


def add_oidc_connection(oidc: Oidc, org: str) -> int:
    """``hubgate sso connection add --oidc-issuer`` for ``org`` (a draft); the provider
    then restarts with the new redirect URI registered beside the earlier ones."""
    printed = oidc.cli_json(
        "sso", "connection", "add", "--org", org, "--oidc-issuer", oidc.provider.issuer,
        "--client-id", oidc.provider.client_id, "--client-secret-stdin",
        stdin=oidc.provider.client_secret + "\n",
    )  # fmt: skip
    assert isinstance(printed, dict) and printed["state"] == "draft", printed
    connection_id = int(printed["id"])
    assert printed["redirect_uri"] == f"{callback_prefix(oidc)}{connection_id}/callback"
    registered = [u for u in oidc.provider.redirect_uris if u.startswith(callback_prefix(oidc))]
    oidc.provider.restart(redirect_uris=[*registered, printed["redirect_uri"]])
    return connection_id


def oidc_sign_in(
    oidc: Oidc,
    org: str,
    account: Account,
    *,
    browser: Browser | None = None,
    accept: dict[str, str] = JSON,
) -> tuple[Browser, httpx.Response]:
    """A whole sign-in from hubgate's start URL, by default from a fresh browser:
    the provider's login form (unless the browser holds a provider session), its
    redirects, then hubgate's callback."""
    browser = browser or oidc.browser()
    started = browser.get(f"{oidc.hubgate}/sso/{org}/start?next=/{org}", follow=False)
    assert started.status_code == 303, started.text
    endpoint = oidc.provider.discovery()["authorization_endpoint"]
    assert started.headers["location"].startswith(endpoint + "?"), started.headers
    page = browser.follow(started, stop_at=callback_prefix(oidc))
    if not page.is_redirect:
        page = provider_login(browser, page, account, stop_at=callback_prefix(oidc))
    assert page.is_redirect, f"{page.status_code} at {page.url}:\n{page.text[:2000]}"
    callback = str(page.url.join(page.headers["location"]))
    return browser, browser.request("GET", callback, headers=accept, follow=False)


def oidc_signed_in(oidc: Oidc, org: PolicyOrg, account: Account, **kwargs: Any) -> Browser:
    browser, answered = oidc_sign_in(oidc, org.name, account, **kwargs)
    assert answered.status_code == 200, answered.text
    assert answered.json()["org"] == org.name
    return browser


def connection_state(oidc: Oidc, org: str, connection_id: int) -> str:
    listed = oidc.cli_json("sso", "connection", "list", "--org", org)
    assert isinstance(listed, list), listed
    (found,) = [c for c in listed if c["id"] == connection_id]
    return str(found["state"])


def oidc_org(oidc: Oidc, name: str, domain: str, mode: str) -> PolicyOrg:
    """``name`` with ``domain`` verified and an OIDC connection: a draft until its
    admin's test sign-in (which shows the Identity and opens nothing) verifies it,
    then activated, and the org put in ``mode``; the admin then signs in through
    SSO and keeps that session."""
    admin_email = f"admin@{domain}"
    oidc.cli_json("user", "create", admin_email)
    oidc.cli_json("org", "create", name, "--admin", admin_email)
    oidc.cli_json("domain", "add", "--org", name, domain)
    verified = oidc.cli_json("domain", "verify", "--org", name, domain)
    assert isinstance(verified, dict) and verified["verified"] is True, verified
    connection_id = add_oidc_connection(oidc, name)  # a draft
    admin = oidc.provider.set_account(f"{name}-admin", email=admin_email, name=f"{name} admin")
    tester, tested = oidc_sign_in(oidc, name, admin)
    assert tested.status_code == 200, tested.text
    identity = tested.json()["identity"]
    assert (identity["connection_id"], identity["email"]) == (connection_id, admin_email)
    assert identity["email_verified"] is True
    assert SESSION_COOKIE not in tester.client.cookies
    assert connection_state(oidc, name, connection_id) == "verified"
    activated = oidc.cli_json("sso", "connection", "activate", str(connection_id))
    assert isinstance(activated, dict) and activated["state"] == "active", activated
    oidc.cli_json("sso", "mode", "--org", name, mode)
    browser, answered = oidc_sign_in(oidc, name, admin)
    assert answered.status_code == 200, answered.text
    assert answered.json()["linked"] is True and answered.json()["created"] is False
    return PolicyOrg(oidc, name, domain, browser, connection_id)


@pytest.fixture(scope="module")
def hooli(oidc: Oidc) -> PolicyOrg:
    return oidc_org(oidc, "hooli", "hooli.test", "managed")


@pytest.fixture(scope="module")
def initrode(oidc: Oidc) -> PolicyOrg:
    return oidc_org(oidc, "initrode", "initrode.test", "basic")


@pytest.fixture(scope="module")
def umbrella(saml: Saml) -> PolicyOrg:
    return sso_org(saml, "umbrella", "umbrella.test", "basic")


# -- managed mode ---------------------------------------------------------------------


def test_managed_mode_through_oidc_creates_the_account_and_follows_the_groups(
    oidc: Oidc, hooli: PolicyOrg
) -> None:
    """The connection went draft -> verified (the test sign-in) -> active before
    managed mode; a new provider account gets an account here, the default role,
    team ``everyone`` and a fresh SSO; its groups, changed at the provider, move
    its mapped role at the next sign-in."""
    setup = [e["action"] for e in reversed(hooli.events())]
    activated = setup.index("sso.connection_activated")
    assert setup.index("sso.identity_verified") < activated < setup.index("sso.settings_changed")
    assert "sso.login" not in setup[:activated]  # the test sign-in signed nobody in
    (activation,) = hooli.api("/audit?action=sso.connection_activated")["events"]
    assert activation["data"] == {"from": "verified", "skip_test": False}

    mapped = oidc.cli_json("sso", "role-map", "--org", "hooli", "--map", "groups=hooli-ops:admin")
    assert mapped == [{"attribute": "groups", "value": "hooli-ops", "role": "admin"}]
    nora = oidc.provider.set_account(
        "nora", email="nora@hooli.test", name="Nora New", groups=["staff"]
    )
    mark = hooli.mark()
    browser, answered = oidc_sign_in(oidc, "hooli", nora, accept=HTML)
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"] == "/hooli"
    person = me(oidc, browser).json()
    assert [(e["address"], e["verified"]) for e in person["emails"]] == [("nora@hooli.test", True)]
    assert person["display_name"] == "Nora New"
    found = membership(oidc, browser, "hooli")
    assert (found["role"], found["teams"]) == ("write", {"everyone": "write"})
    assert found["sso"] == "fresh" and found["sso_fresh_until"]
    assert hooli.members()["nora@hooli.test"] == ("write", {"everyone": "write"})
    actions = {e["action"] for e in hooli.events(after=mark)}
    assert {"sso.jit_created", "sso.linked", "sso.login"} <= actions

    nora = oidc.provider.set_account("nora", groups=["staff", "hooli-ops"])
    again = oidc_signed_in(oidc, hooli, nora)
    assert membership(oidc, again, "hooli")["role"] == "admin"
    nora = oidc.provider.set_account("nora", groups=["staff"])
    oidc_signed_in(oidc, hooli, nora)
    assert hooli.members()["nora@hooli.test"] == ("write", {"everyone": "write"})
    changes = [e["data"] for e in hooli.events(after=mark) if e["action"] == "role.mapped"]
    assert changes == [
        {"from": "admin", "to": "write", "source": "default"},
        {"from": "write", "to": "admin", "source": "mapping"},
    ]
    created = [e for e in hooli.events(after=mark) if e["action"] == "sso.jit_created"]
    assert len(created) == 1  # the later sign-ins found the account by its link


def test_an_unverified_email_is_refused_and_changes_nothing(oidc: Oidc, hooli: PolicyOrg) -> None:
    """carol's provider does not vouch for her address (``email_verified`` false):
    managed mode makes no account of it. Vouched for afterwards, the same person's
    sign-in creates the account, so the refusal had made none."""
    carol = oidc.provider.set_account("carol", email="carol@hooli.test")
    assert carol.email_verified is False
    mark, members = hooli.mark(), hooli.members()
    browser, answered = oidc_sign_in(oidc, "hooli", carol)
    assert_refused_changing_nothing(
        hooli, browser, answered, "email_unverified", mark=mark, members=members
    )

    carol = oidc.provider.set_account("carol", email_verified=True)
    _, admitted = oidc_sign_in(oidc, "hooli", carol)
    assert admitted.status_code == 200, admitted.text
    assert (admitted.json()["created"], admitted.json()["linked"]) == (True, False)
    assert hooli.members()["carol@hooli.test"] == ("write", {"everyone": "write"})


def silent_sign_in(oidc: Oidc, browser: Browser, org: str) -> httpx.Response:
    """hubgate's start, sent on to the provider with ``prompt=none`` (OpenID Connect
    Core §3.1.2.1): the provider may not show its login form and must answer
    hubgate's callback (with an error if nobody is signed in there); hubgate's
    answer to that callback."""
    started = browser.get(f"{oidc.hubgate}/sso/{org}/start?next=/{org}", follow=False)
    assert started.status_code == 303, started.text
    silent = browser.get(started.headers["location"] + "&prompt=none", follow=False)
    back = browser.follow(silent, stop_at=callback_prefix(oidc))
    assert back.is_redirect, f"{back.status_code} at {back.url}:\n{back.text[:2000]}"
    callback = str(back.url.join(back.headers["location"]))
    assert callback.startswith(callback_prefix(oidc)) and "error=login_required" in callback
    return browser.request("GET", callback, headers=JSON, follow=False)


def test_a_removed_provider_account_gets_no_new_sso_authentication(
    oidc: Oidc, hooli: PolicyOrg
) -> None:
    """Removed at the provider, the account cannot sign in again: not from the
    browser that still holds its provider session (oidc-provider 9.13 finds no
    account for that session and answers a server_error page, no redirect back),
    nor, once the provider's sessions are over, at its login form. What can still
    reach hubgate's callback is refused there and audited: the callback of the
    account's last sign-in, replayed (its state is spent), and the provider's
    ``login_required`` for a sign-in asked without a login form. The hubgate
    session from before keeps the SSO authentication it had, no newer one."""
    owen = oidc.provider.set_account("owen", email="owen@hooli.test")
    browser, answered = oidc_sign_in(oidc, "hooli", owen)
    assert answered.status_code == 200, answered.text
    last_callback = str(answered.request.url)
    fresh_until = membership(oidc, browser, "hooli")["sso_fresh_until"]
    oidc.provider.remove_account("owen")
    mark, members = hooli.mark(), hooli.members()

    def at_the_provider() -> httpx.Response:
        started = browser.get(f"{oidc.hubgate}/sso/hooli/start?next=/hooli", follow=False)
        assert started.status_code == 303, started.text
        page = browser.follow(started, stop_at=callback_prefix(oidc))
        assert not page.is_redirect, "the provider sent a removed account back to hubgate"
        return page

    at_the_provider()  # with the provider session of before
    oidc.provider.restart()  # its sessions are in memory: this ends them
    refused = provider_login(browser, at_the_provider(), owen, stop_at=callback_prefix(oidc))
    assert refused.status_code == 200 and "Invalid login or password" in refused.text

    replayed = browser.request("GET", last_callback, headers=JSON, follow=False)
    silent = silent_sign_in(oidc, browser, "hooli")
    answers = [(r.status_code, r.json()["error"]) for r in (replayed, silent)]
    assert answers == [(400, "oidc_state_invalid"), (400, "oidc_provider_error")], answers
    assert "login_required" in silent.json()["message"]
    trail = [(e["action"], e["reason"], e["trace_id"]) for e in hooli.events(after=mark)]
    assert trail == [
        ("sso.login_refused", "oidc_provider_error", silent.json()["trace_id"]),
        ("sso.login_refused", "oidc_state_invalid", replayed.json()["trace_id"]),
    ]
    assert hooli.members() == members
    assert membership(oidc, browser, "hooli")["sso_fresh_until"] == fresh_until
    assert [e["address"] for e in me(oidc, browser).json()["emails"]] == ["owen@hooli.test"]


# -- two orgs, two IdPs ------------------------------------------------------------------


def add_verified_email(oidc: Oidc, browser: Browser, address: str) -> None:
    """The signed-in person adds ``address`` and opens the link mailed to it."""
    csrf = {"x-csrf-token": me(oidc, browser).json()["csrf_token"]}
    added = browser.client.post(
        f"{oidc.hubgate}/api/v1/me/emails", json={"email": address}, headers=csrf
    )
    assert added.status_code == 201, added.text
    mail = oidc.cli_json("mail", "outbox", "--to", address)
    assert isinstance(mail, list) and len(mail) == 1, mail
    link = re.search(r"https?://\S+/verify-email\?\S+", mail[0]["body"])
    assert link is not None, mail[0]["body"]
    (token,) = parse_qs(urlsplit(link.group(0)).query)["token"]
    confirmed = browser.client.post(
        f"{oidc.hubgate}/api/v1/verify-email", json={"token": token}, headers=csrf
    )
    assert confirmed.status_code == 200, confirmed.text


def test_two_orgs_two_idps_sso_for_one_does_not_open_the_other(
    oidc: Oidc, saml: Saml, umbrella: PolicyOrg, initrode: PolicyOrg
) -> None:
    """Pia is a password account, member of umbrella (SAML) and initrode (OIDC).
    Each org's IdP may only sign in addresses of that org's own verified domain
    (and is refused one of the other org's), so she holds one email per org:
    pia@umbrella.test from ``hubgate user create``, pia@initrode.test added by
    herself and confirmed by the mailed link. SSO for umbrella opens umbrella's
    private model only; SSO for initrode then opens initrode's too."""
    for org in ("umbrella", "initrode"):
        oidc.cli_json("resource", "create", "model", "secret", "--org", org, "--private")
    created = oidc.cli_json(
        "user", "create", "pia@umbrella.test", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert isinstance(created, dict)
    pia_id = int(created["id"])
    for org in ("umbrella", "initrode"):
        oidc.cli_json("member", "add", "pia@umbrella.test", "--org", org)
    browser = oidc.browser()
    logged_in = browser.client.post(
        f"{oidc.hubgate}/api/v1/login", json={"email": "pia@umbrella.test", "password": PASSWORD}
    )
    assert logged_in.status_code == 200, logged_in.text
    add_verified_email(oidc, browser, "pia@initrode.test")
    emails = me(oidc, browser).json()["emails"]
    assert {(e["address"], e["verified"]) for e in emails} == {
        ("pia@umbrella.test", True),
        ("pia@initrode.test", True),
    }

    def private_model(org: str) -> tuple[httpx.Response, httpx.Response]:
        api = browser.client.get(f"{oidc.hubgate}/api/v1/orgs/{org}/resources/model/secret")
        uri = {"x-original-uri": f"/{org}/models/secret"}
        return api, browser.client.get(f"{oidc.hubgate}/auth/check", headers=uri)

    def assert_blocked(org: str) -> None:
        api, check = private_model(org)
        assert api.status_code == 401, api.text
        assert api.json()["error"] == "sso_required"
        assert api.json()["details"]["sso_url"].endswith(f"/sso/{org}/start?next=/{org}")
        assert (check.status_code, check.headers.get("x-hubgate-reason")) == (401, "sso_required")

    def assert_open(org: str) -> None:
        api, check = private_model(org)
        assert (api.status_code, check.status_code) == (200, 200), api.text

    def sso(org: str) -> str:
        return str(membership(oidc, browser, org)["sso"])

    assert_blocked("umbrella")
    assert_blocked("initrode")

    at_saml = saml.idp.set_user("pia", email="pia@umbrella.test")
    _, answered = sign_in(saml, umbrella.start_url, at_saml, browser=browser)
    assert answered.status_code == 200, answered.text
    assert (answered.json()["user_id"], answered.json()["linked"]) == (pia_id, True)
    assert_open("umbrella")
    assert_blocked("initrode")
    assert (sso("umbrella"), sso("initrode")) == ("fresh", "stale")

    at_oidc = oidc.provider.set_account("pia", email="pia@initrode.test")
    _, answered = oidc_sign_in(oidc, "initrode", at_oidc, browser=browser)
    assert answered.status_code == 200, answered.text
    assert (answered.json()["user_id"], answered.json()["linked"]) == (pia_id, True)
    assert_open("initrode")
    assert_open("umbrella")  # the new session took umbrella's SSO authentication along
    assert (sso("umbrella"), sso("initrode")) == ("fresh", "fresh")


def test_a_pre_registration_never_blocks_the_owners_oidc_sign_in(
    oidc: Oidc, hooli: PolicyOrg
) -> None:
    """Account pre-hijacking through OpenID Connect: someone registered
    rae@hooli.test first. The provider vouches for rae (``email_verified``), so her
    sign-in makes her own account, and the pre-registrant's password opens nothing."""
    squatter = oidc.browser()
    squat(oidc.hubgate, squatter, "rae@hooli.test")
    rae = oidc.provider.set_account("rae", email="rae@hooli.test", email_verified=True)
    browser, answered = oidc_sign_in(oidc, "hooli", rae)
    assert answered.status_code == 200, answered.text
    assert (answered.json()["created"], answered.json()["linked"]) == (True, False)
    assert hooli.members()["rae@hooli.test"] == ("write", {"everyone": "write"})
    assert password_of(oidc.hubgate, squatter, "rae@hooli.test").status_code == 401
