"""hubgate's OpenID Connect relying party against a real OpenID Provider:
panva's oidc-provider under node (tests/e2e/oidc/provider.mjs, started by
tests/e2e/oidc_provider.py).

First the provider on its own, driven by httpx as a minimal relying party
(discovery, JWKS, the authorization code flow with PKCE, key rotation), so a
failure below can be told apart from a broken provider. Then hubgate: the
connection is created with the ``hubgate`` CLI from the provider's issuer, as
an operator would; the provider is then restarted with hubgate's redirect URI
registered (it holds the connection id, and oidc-provider reads its clients
once, at start). The "browser" is httpx with one cookie jar per person and
redirects followed by hand: hubgate's start URL, the provider's login form,
its redirects (consent is granted on its own), hubgate's callback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from hubgate.db.models import Membership, SsoConnection, User, WebSession
from tests.conftest import World
from tests.e2e.conftest import _hubgate_env, running_server
from tests.e2e.idp import Browser
from tests.e2e.oidc_provider import (
    ACCOUNTS,
    Account,
    ProviderInfo,
    authorization_url,
    callback_params,
    exchange_code,
    generate_signing_key,
    login_form,
    pkce_pair,
    provider_abort,
    provider_login,
    public_jwk,
    require_provider,
    running_provider,
)

pytestmark = pytest.mark.e2e

ORG = "acme"
ADMIN = "admin@acme.test"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
SERVER_ENV = {"HUBGATE_ALLOW_PRIVATE_IDP_URLS": "true"}
HUBGATE_CLI = [str(Path(sys.executable).with_name("hubgate"))]
RP_CALLBACK = "http://127.0.0.1:9/rp/callback"  # the provider-only tests' relying party
RESERVED_SECRET = "Zm9v+YmFy/YmF6=c2VjcmV0%21:x"  # base64-like, with + / = % and :


# -- the provider on its own ------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[ProviderInfo]:
    require_provider()
    with running_provider(RP_CALLBACK) as info:
        yield info


@dataclass(frozen=True)
class Tokens:
    callback: dict[str, str]
    body: dict[str, object]
    claims: dict[str, object]
    header: dict[str, object]


def rp_sign_in(
    info: ProviderInfo, account: Account, *, nonce: str = "nonce-1", state: str = "state-1"
) -> Tokens:
    """The whole authorization code flow with PKCE, as a relying party would run it;
    the id_token is verified against the provider's published JWKS."""
    verifier, challenge = pkce_pair()
    with Browser() as browser:
        page = browser.get(authorization_url(info, state=state, nonce=nonce, challenge=challenge))
        params = callback_params(provider_login(browser, page, account, stop_at=RP_CALLBACK))
    assert params["state"] == state
    assert params["iss"] == info.issuer  # RFC 9207
    answered = exchange_code(info, params["code"], verifier)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    keys = KeySet.import_key_set(info.jwks())  # type: ignore[arg-type]
    token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    claims = dict(token.claims)
    assert claims["iss"] == info.issuer
    assert claims["aud"] == info.client_id
    assert claims["nonce"] == nonce
    assert claims["sub"] == account.sub
    return Tokens(params, body, claims, dict(token.header))


def userinfo(info: ProviderInfo, access_token: object) -> dict[str, object]:
    endpoint = info.discovery()["userinfo_endpoint"]
    answered = httpx.get(
        endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=10.0
    )
    assert answered.status_code == 200, answered.text
    body: dict[str, object] = answered.json()
    return body


def test_discovery_document(provider: ProviderInfo) -> None:
    document = provider.discovery()
    assert document["issuer"] == provider.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert str(document[endpoint]).startswith(provider.issuer + "/"), endpoint
    assert document["code_challenge_methods_supported"] == ["S256"]
    # RFC 9207: oidc-provider always puts `iss` in authorization responses (and says so).
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["response_types_supported"] == ["code"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    assert {"openid", "email", "profile"} <= set(document["scopes_supported"])
    assert {"email", "email_verified", "name", "groups"} <= set(document["claims_supported"])
    assert "RS256" in document["id_token_signing_alg_values_supported"]


def test_jwks_publishes_the_public_signing_key(provider: ProviderInfo) -> None:
    jwks = provider.jwks()
    assert jwks == provider.public_jwks()
    assert [key["kid"] for key in jwks["keys"]] == [provider.kid]
    assert not {"d", "p", "q"} & set(jwks["keys"][0])


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authorization_code_flow_with_pkce_yields_an_id_token(auth_method: str) -> None:
    require_provider()
    with running_provider(RP_CALLBACK, auth_method) as info:
        tokens = rp_sign_in(info, ACCOUNTS["alice"])
        assert tokens.header["kid"] == info.kid
        assert tokens.header["alg"] == "RS256"
        # oidc-provider's default (conformIdTokenClaims): with an access token
        # issued, the scope claims are at userinfo, not in the id_token.
        assert "email" not in tokens.claims
        released = userinfo(info, tokens.body["access_token"])
        alice = ACCOUNTS["alice"]
        assert released["sub"] == alice.sub
        assert released["email"] == alice.email
        assert released["email_verified"] is True
        assert released["name"] == alice.name
        assert released["groups"] == list(alice.groups)


def test_claims_in_the_id_token_when_not_conforming() -> None:
    require_provider()
    with running_provider(RP_CALLBACK, conform_id_token_claims=False) as info:
        claims = rp_sign_in(info, ACCOUNTS["carol"]).claims
        carol = ACCOUNTS["carol"]
        assert claims["email"] == carol.email
        assert claims["email_verified"] is False
        assert claims["groups"] == list(carol.groups)


def test_pkce_is_required(provider: ProviderInfo) -> None:
    with Browser() as browser:
        url = authorization_url(provider, state="s", nonce="n", challenge=None)
        answered = browser.get(url, follow=False)
        params = callback_params(answered)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    assert params["iss"] == provider.issuer


def test_the_code_needs_the_right_verifier_and_works_once(provider: ProviderInfo) -> None:
    verifier, challenge = pkce_pair()
    with Browser() as browser:
        page = browser.get(authorization_url(provider, state="s", nonce="n", challenge=challenge))
        params = callback_params(
            provider_login(browser, page, ACCOUNTS["alice"], stop_at=RP_CALLBACK)
        )
    wrong = exchange_code(provider, params["code"], pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert exchange_code(provider, params["code"], verifier).status_code == 200
    again = exchange_code(provider, params["code"], verifier)
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"


def test_a_wrong_client_secret_is_refused(provider: ProviderInfo) -> None:
    """(oidc-provider accepts client_secret_basic and client_secret_post alike
    for a client registered with either: the secret is what is checked.)"""
    verifier, challenge = pkce_pair()
    with Browser() as browser:
        page = browser.get(authorization_url(provider, state="s", nonce="n", challenge=challenge))
        params = callback_params(
            provider_login(browser, page, ACCOUNTS["alice"], stop_at=RP_CALLBACK)
        )
    secret, provider.client_secret = provider.client_secret, "not-the-secret"
    refused = exchange_code(provider, params["code"], verifier)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_client"
    provider.client_secret = secret
    assert exchange_code(provider, params["code"], verifier).status_code == 200


def test_client_secret_basic_is_form_urlencoded() -> None:
    """RFC 6749 §2.3.1: the id and secret are form-urlencoded before base64, and
    oidc-provider decodes them: a secret with ``+`` or ``%`` sent raw is refused."""
    require_provider()
    with running_provider(RP_CALLBACK, client_secret=RESERVED_SECRET) as info:
        verifier, challenge = pkce_pair()
        with Browser() as browser:
            page = browser.get(authorization_url(info, state="s", nonce="n", challenge=challenge))
            params = callback_params(
                provider_login(browser, page, ACCOUNTS["alice"], stop_at=RP_CALLBACK)
            )
        raw = exchange_code(info, params["code"], verifier, urlencode_basic=False)
        assert raw.status_code == 401, raw.text
        assert raw.json()["error"] == "invalid_client"
        encoded = exchange_code(info, params["code"], verifier)
        assert encoded.status_code == 200, encoded.text


def test_key_rotation_publishes_the_new_key(provider: ProviderInfo) -> None:
    old_kid = provider.kid
    assert rp_sign_in(provider, ACCOUNTS["alice"]).header["kid"] == old_kid
    provider.restart(key_index=1, publish=[1, 0])
    assert provider.kid != old_kid
    assert [key["kid"] for key in provider.jwks()["keys"]] == [provider.kid, old_kid]
    assert rp_sign_in(provider, ACCOUNTS["alice"]).header["kid"] == provider.kid
    provider.restart(key_index=1)  # the old key retired
    assert [key["kid"] for key in provider.jwks()["keys"]] == [provider.kid]
    assert rp_sign_in(provider, ACCOUNTS["alice"]).header["kid"] == provider.kid


def test_cancel_answers_access_denied(provider: ProviderInfo) -> None:
    with Browser() as browser:
        url = authorization_url(provider, state="s-9", nonce="n", challenge=pkce_pair()[1])
        params = callback_params(provider_abort(browser, browser.get(url), stop_at=RP_CALLBACK))
    assert params["error"] == "access_denied"
    assert params["state"] == "s-9"
    assert params["iss"] == provider.issuer
    assert "code" not in params


def test_a_wrong_password_shows_the_form_again(provider: ProviderInfo) -> None:
    with Browser() as browser:
        url = authorization_url(provider, state="s", nonce="n", challenge=pkce_pair()[1])
        page = browser.get(url)
        refused = provider_login(browser, page, ACCOUNTS["alice"], stop_at=RP_CALLBACK,
                                 password="not-alicepass")  # fmt: skip
        assert refused.status_code == 200
        assert "Invalid login or password" in refused.text
        assert login_form(refused) is not None
        answered = provider_login(browser, refused, ACCOUNTS["alice"], stop_at=RP_CALLBACK)
        assert "code" in callback_params(answered)


# -- hubgate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    id: int
    redirect_uri: str


@dataclass
class Oidc:
    """hubgate and the provider, running on the test's database, with org ``acme``."""

    hubgate: str
    provider: ProviderInfo
    env: Mapping[str, str]
    browsers: list[Browser] = field(default_factory=list)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUBGATE_CLI, *args], env=dict(self.env), input=stdin, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip

    def cli_json(self, *args: str, stdin: str = "") -> object:
        done = self.cli(*args, "--json", stdin=stdin)
        assert done.returncode == 0, f"hubgate {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    def add_connection(
        self,
        token_auth: str | None = None,
        *,
        secret: str = "",
        client_jwks: Mapping[str, Any] | None = None,
    ) -> Connection:
        """``hubgate sso connection add --oidc-issuer`` with the provider's client secret
        (or ``secret``); the provider is then restarted with the printed redirect
        URI registered, for the client auth method hubgate was told. For
        ``private_key_jwt`` the client's keys are hubgate's printed ``jwks_uri``,
        or ``client_jwks`` inline instead."""
        flags = ["--token-auth", token_auth] if token_auth else []
        printed = self.cli_json(
            "sso", "connection", "add", "--org", ORG, "--oidc-issuer", self.provider.issuer,
            "--client-id", self.provider.client_id, "--client-secret-stdin", *flags,
            stdin=(secret or self.provider.client_secret) + "\n",
        )  # fmt: skip
        assert isinstance(printed, dict), printed
        connection = Connection(int(printed["id"]), printed["redirect_uri"])
        assert connection.redirect_uri == f"{self.hubgate}/sso/oidc/{connection.id}/callback"
        assert printed["issuer"] == self.provider.issuer
        assert printed["client_id"] == self.provider.client_id
        assert printed["token_auth"] == (token_auth or "client_secret_basic")
        assert self.provider.client_secret not in json.dumps(printed)
        assert printed["jwks_uri"] == f"{self.hubgate}/sso/oidc/{connection.id}/jwks"
        keys: dict[str, Any] = {}
        if token_auth == "private_key_jwt":
            keys = (
                {"client_jwks": client_jwks}
                if client_jwks
                else {"client_jwks_uri": printed["jwks_uri"]}
            )
        self.provider.restart(
            redirect_uris=[connection.redirect_uri],
            auth_method=token_auth or "client_secret_basic",
            **keys,
        )
        return connection

    def browser(self) -> Browser:
        browser = Browser()
        self.browsers.append(browser)
        return browser


@contextmanager
def hubgate_and_provider(
    database_url: str, world: World, **provider_options: Any
) -> Iterator[Oidc]:
    """The org ``acme``, the provider (``running_provider`` options) and hubgate."""
    require_provider()
    world.org(ORG, world.user(ADMIN))
    with (
        running_provider(**provider_options) as provider,
        running_server(database_url, SERVER_ENV) as hubgate,
    ):
        env = _hubgate_env(database_url, hubgate, SERVER_ENV)
        state = Oidc(hubgate=hubgate, provider=provider, env=env)
        try:
            yield state
        finally:
            for browser in state.browsers:
                browser.client.close()


@pytest.fixture
def oidc(database_url: str, world: World) -> Iterator[Oidc]:
    with hubgate_and_provider(database_url, world) as state:
        yield state


def start_at_hubgate(
    oidc: Oidc, browser: Browser, connection: Connection, next_path: str = "/acme"
) -> httpx.Response:
    """GET /sso/acme/start: a 303 to the provider's authorization endpoint with a
    code flow request (PKCE S256, state, nonce); returns the page the provider
    shows after its own redirects (the login form)."""
    started = browser.get(
        f"{oidc.hubgate}/sso/{ORG}/start", params={"next": next_path}, follow=False
    )
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    endpoint = oidc.provider.discovery()["authorization_endpoint"]
    assert location.startswith(endpoint + "?"), location
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == oidc.provider.client_id
    assert query["redirect_uri"] == connection.redirect_uri
    assert query["code_challenge_method"] == "S256"
    assert "openid" in query["scope"].split()
    assert query["state"] and query["nonce"] and query["code_challenge"]
    return browser.follow(started)


def to_callback(
    oidc: Oidc, browser: Browser, connection: Connection, account: Account
) -> httpx.Response:
    """Start at hubgate, sign in at the provider; the provider's redirect to the callback."""
    page = start_at_hubgate(oidc, browser, connection)
    redirect = provider_login(browser, page, account, stop_at=connection.redirect_uri)
    assert redirect.is_redirect, f"{redirect.status_code} at {redirect.url}:\n{redirect.text}"
    return redirect


def follow_to_callback(
    browser: Browser, redirect: httpx.Response, headers: Mapping[str, str] = JSON
) -> httpx.Response:
    target = str(redirect.url.join(redirect.headers["location"]))
    return browser.request("GET", target, headers=headers, follow=False)


def sign_in(
    oidc: Oidc, connection: Connection, account: Account, headers: Mapping[str, str] = JSON
) -> httpx.Response:
    browser = oidc.browser()
    return follow_to_callback(browser, to_callback(oidc, browser, connection, account), headers)


def identity_of(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    identity = response.json()["identity"]
    assert isinstance(identity, dict)
    return identity


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    code = response.json()["error"]
    assert isinstance(code, str)
    return code


def assert_identity(
    identity: Mapping[str, object], account: Account, connection: Connection, issuer: str
) -> None:
    assert identity["connection_id"] == connection.id
    assert identity["subject"] in (f"{issuer} {account.sub}", account.sub), identity["subject"]
    assert identity["email"] == account.email
    assert identity["email_verified"] is account.email_verified
    assert identity["display_name"] == account.name
    assert identity["groups"] == list(account.groups)


def with_query(url: str, changes: Mapping[str, str | None]) -> str:
    """``url`` with query parameters replaced (or removed, for None)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


def test_the_connection_is_made_from_discovery(oidc: Oidc) -> None:
    connection = oidc.add_connection()
    listed = oidc.cli_json("sso", "connection", "list", "--org", ORG)
    assert isinstance(listed, list) and len(listed) == 1, listed
    assert listed[0]["id"] == connection.id
    assert listed[0]["kind"] == "oidc"
    assert listed[0]["redirect_uri"] == connection.redirect_uri


@pytest.mark.parametrize("conform", [True, False], ids=["claims-at-userinfo", "claims-in-id-token"])
def test_sign_in_gives_the_identity(oidc: Oidc, conform: bool) -> None:
    """alice: groups, and an email the provider vouches for. With oidc-provider's
    default the claims come from userinfo; otherwise from the id_token itself."""
    connection = oidc.add_connection()
    if not conform:
        oidc.provider.restart(conform_id_token_claims=False)
    answered = sign_in(oidc, connection, ACCOUNTS["alice"])
    assert_identity(identity_of(answered), ACCOUNTS["alice"], connection, oidc.provider.issuer)
    assert answered.json()["next"] == "/acme"


@pytest.mark.parametrize("token_auth", ["client_secret_basic", "client_secret_post"])
def test_the_client_authenticates_as_configured(oidc: Oidc, token_auth: str) -> None:
    """(oidc-provider takes either method for a client registered with one, so
    its log tells which one hubgate used: an Authorization header, or not.)"""
    connection = oidc.add_connection(token_auth)
    answered = sign_in(oidc, connection, ACCOUNTS["alice"])
    assert_identity(identity_of(answered), ACCOUNTS["alice"], connection, oidc.provider.issuer)
    header = "yes" if token_auth == "client_secret_basic" else "no"
    assert oidc.provider.token_requests() == [f"POST /token 200 authorization_header={header}"]


def test_an_unverified_email_is_passed_on_as_unverified(oidc: Oidc) -> None:
    connection = oidc.add_connection()
    identity = identity_of(sign_in(oidc, connection, ACCOUNTS["carol"]))
    assert_identity(identity, ACCOUNTS["carol"], connection, oidc.provider.issuer)
    assert identity["email_verified"] is False


def test_sign_in_renders_a_page_for_a_browser(oidc: Oidc) -> None:
    connection = oidc.add_connection()
    answered = sign_in(oidc, connection, ACCOUNTS["alice"], HTML)
    assert answered.status_code in (200, 303), answered.text
    if answered.status_code == 200:
        assert answered.headers["content-type"].startswith("text/html")


def test_key_rotation_between_two_sign_ins(oidc: Oidc) -> None:
    """The provider moves to a new signing key and publishes only that one: the
    next sign-in verifies with it (hubgate refetches the JWKS for an unknown kid)."""
    connection = oidc.add_connection()
    alice, issuer = ACCOUNTS["alice"], oidc.provider.issuer
    assert_identity(identity_of(sign_in(oidc, connection, alice)), alice, connection, issuer)
    oidc.provider.restart(key_index=1)
    assert [key["kid"] for key in oidc.provider.jwks()["keys"]] == [oidc.provider.kid]
    assert_identity(identity_of(sign_in(oidc, connection, alice)), alice, connection, issuer)


def test_key_rotation_with_the_next_key_published_ahead(oidc: Oidc) -> None:
    """The graceful rotation: the next key is published before it signs, and the
    old one retired after; each sign-in verifies with the key set hubgate holds."""
    connection = oidc.add_connection()
    alice, issuer = ACCOUNTS["alice"], oidc.provider.issuer
    oidc.provider.restart(publish=[0, 1])  # signs with key 0, publishes key 1 too
    assert_identity(identity_of(sign_in(oidc, connection, alice)), alice, connection, issuer)
    oidc.provider.restart(key_index=1, publish=[1, 0])  # signs with key 1
    assert_identity(identity_of(sign_in(oidc, connection, alice)), alice, connection, issuer)
    oidc.provider.restart(key_index=1)  # key 0 retired
    assert_identity(identity_of(sign_in(oidc, connection, alice)), alice, connection, issuer)


def test_the_user_cancels_at_the_provider(oidc: Oidc) -> None:
    connection = oidc.add_connection()
    browser = oidc.browser()
    page = start_at_hubgate(oidc, browser, connection)
    redirect = provider_abort(browser, page, stop_at=connection.redirect_uri)
    assert callback_params(redirect)["error"] == "access_denied"
    answered = follow_to_callback(browser, redirect)
    assert error_of(answered) == "oidc_provider_error"
    assert "access_denied" in answered.json()["message"]


def test_a_wrong_password_never_reaches_hubgate(oidc: Oidc) -> None:
    connection = oidc.add_connection()
    browser = oidc.browser()
    page = start_at_hubgate(oidc, browser, connection)
    refused = provider_login(browser, page, ACCOUNTS["alice"], stop_at=connection.redirect_uri,
                             password="not-alicepass")  # fmt: skip
    assert refused.status_code == 200 and login_form(refused) is not None
    redirect = provider_login(browser, refused, ACCOUNTS["alice"], stop_at=connection.redirect_uri)
    assert_identity(identity_of(follow_to_callback(browser, redirect)), ACCOUNTS["alice"],
                    connection, oidc.provider.issuer)  # fmt: skip


def test_a_replayed_callback_is_refused(oidc: Oidc) -> None:
    """The back button, or a captured redirect: state is single-use."""
    connection = oidc.add_connection()
    browser = oidc.browser()
    redirect = to_callback(oidc, browser, connection, ACCOUNTS["alice"])
    identity_of(follow_to_callback(browser, redirect))
    assert error_of(follow_to_callback(browser, redirect)) == "oidc_state_invalid"


def test_a_callback_in_another_browser_is_refused(oidc: Oidc) -> None:
    """A code and state lured into the victim's browser (login CSRF)."""
    connection = oidc.add_connection()
    attacker = oidc.browser()
    redirect = to_callback(oidc, attacker, connection, ACCOUNTS["carol"])
    victim = oidc.browser()
    victim.get(f"{oidc.hubgate}/sso/{ORG}/start", follow=False)  # has its own sign-in cookie
    assert error_of(follow_to_callback(victim, redirect)) == "oidc_state_invalid"


@pytest.mark.parametrize("iss", ["http://127.0.0.1:1", None], ids=["other-iss", "no-iss"])
def test_the_iss_parameter_is_checked(oidc: Oidc, iss: str | None) -> None:
    """RFC 9207 (mix-up): the provider advertises the iss parameter, so a response
    with another one, or without one, is refused before the code is used."""
    connection = oidc.add_connection()
    browser = oidc.browser()
    redirect = to_callback(oidc, browser, connection, ACCOUNTS["alice"])
    target = with_query(str(redirect.url.join(redirect.headers["location"])), {"iss": iss})
    answered = browser.request("GET", target, headers=JSON, follow=False)
    assert error_of(answered) == "oidc_issuer_mismatch"


def test_a_wrong_client_secret_fails_the_exchange(oidc: Oidc) -> None:
    connection = oidc.add_connection(secret="not-the-secret")
    answered = sign_in(oidc, connection, ACCOUNTS["alice"])
    assert error_of(answered) == "oidc_token_exchange_failed"
    assert "invalid_client" in answered.json()["message"]


@pytest.mark.parametrize(
    "token_auth",
    [
        "client_secret_basic",
        "client_secret_post",
    ],
)  # fmt: skip
def test_a_client_secret_with_reserved_characters(
    database_url: str, world: World, token_auth: str
) -> None:
    """Providers that issue base64-like secrets (``+``, ``/``, ``=``). RFC 6749
    §2.3.1 has client_secret_basic form-urlencode the id and secret before
    base64, and oidc-provider decodes them so: a ``+`` sent raw becomes a space."""
    with hubgate_and_provider(database_url, world, client_secret=RESERVED_SECRET) as oidc:
        connection = oidc.add_connection(token_auth)
        answered = sign_in(oidc, connection, ACCOUNTS["alice"])
        assert_identity(identity_of(answered), ACCOUNTS["alice"], connection, oidc.provider.issuer)


def rows(world: World) -> dict[str, int]:
    """Users, memberships and sessions in the database, and connections verified."""
    with world.rt.db.transaction() as db:
        count = {m.__name__: db.scalar(select(func.count()).select_from(m)) or 0
                 for m in (User, Membership, WebSession)}  # fmt: skip
        verified = select(func.count()).select_from(SsoConnection)
        count["verified"] = db.scalar(verified.where(SsoConnection.state != "draft")) or 0
        return count


def test_private_key_jwt_sign_in(oidc: Oidc) -> None:
    """The provider knows hubgate's client by its jwks_uri alone (no secret): it
    fetches /sso/oidc/{id}/jwks and verifies hubgate's client assertion with it."""
    connection = oidc.add_connection("private_key_jwt")
    published = httpx.get(f"{oidc.hubgate}/sso/oidc/{connection.id}/jwks", timeout=10.0).json()
    assert [key["alg"] for key in published["keys"]] == ["RS256"]
    answered = sign_in(oidc, connection, ACCOUNTS["alice"])
    assert_identity(identity_of(answered), ACCOUNTS["alice"], connection, oidc.provider.issuer)
    assert oidc.provider.token_requests() == ["POST /token 200 authorization_header=no"]


def test_a_client_assertion_signed_by_another_key_is_refused(oidc: Oidc, world: World) -> None:
    """The provider holds another public key for the client than the one hubgate
    signs with: it answers invalid_client, hubgate refuses the sign-in and nothing
    changes; once the provider takes hubgate's published key, the sign-in passes."""
    other = {"keys": [public_jwk(generate_signing_key("someone-else"))]}
    connection = oidc.add_connection("private_key_jwt", client_jwks=other)
    before = rows(world)
    answered = sign_in(oidc, connection, ACCOUNTS["alice"])
    assert error_of(answered) == "oidc_token_exchange_failed"
    assert "invalid_client" in answered.json()["message"]
    assert oidc.provider.token_requests() == ["POST /token 401 authorization_header=no"]
    assert rows(world) == before and before["verified"] == 0
    oidc.provider.restart(client_jwks_uri=f"{oidc.hubgate}/sso/oidc/{connection.id}/jwks")
    identity_of(sign_in(oidc, connection, ACCOUNTS["alice"]))


def test_a_changed_group_arrives_in_the_next_sign_in(oidc: Oidc) -> None:
    """The provider reads its accounts at every lookup: a group removed and one
    added between two sign-ins show in the second Identity, with no restart."""
    connection = oidc.add_connection()
    issuer = oidc.provider.issuer
    first = identity_of(sign_in(oidc, connection, ACCOUNTS["alice"]))
    assert first["groups"] == ["hubgate-admins", "research"]
    changed = oidc.provider.set_account("alice", groups=["research", "ml-platform"])
    second = identity_of(sign_in(oidc, connection, changed))
    assert second["groups"] == ["research", "ml-platform"]
    assert_identity(second, changed, connection, issuer)
    assert len(oidc.provider.log_file.read_text().split("oidc-provider listening")) == 2


def test_accounts_added_and_removed_between_two_sign_ins(oidc: Oidc) -> None:
    connection = oidc.add_connection()
    dave = oidc.provider.set_account("dave", email_verified=False, name="Dave Doe")
    identity = identity_of(sign_in(oidc, connection, dave))
    assert_identity(identity, dave, connection, oidc.provider.issuer)
    oidc.provider.remove_account("dave")
    browser = oidc.browser()
    page = start_at_hubgate(oidc, browser, connection)
    refused = provider_login(browser, page, dave, stop_at=connection.redirect_uri)
    assert refused.status_code == 200 and "Invalid login or password" in refused.text
