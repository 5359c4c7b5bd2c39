"""A real OpenID Provider for end-to-end tests: panva's ``oidc-provider`` (the npm
package pinned in ``tests/e2e/oidc/package.json``) under ``node``, plus helpers
to drive a sign-in through it with the :class:`~tests.e2e.idp.Browser`.

- :func:`running_provider` starts ``tests/e2e/oidc/provider.mjs`` on a free
  loopback port (issuer ``http://127.0.0.1:PORT``) with one static confidential
  client, the :data:`ACCOUNTS`, and RS256 signing keys it generates as a JWKS
  file; it yields a :class:`ProviderInfo`. :meth:`ProviderInfo.restart` starts
  the provider again on the same port with other redirect URIs or another key
  set (key rotation): oidc-provider reads its clients and keys once, at start.
  Its accounts it reads again at every lookup: :meth:`ProviderInfo.set_account`
  and :meth:`ProviderInfo.remove_account` change them between two sign-ins.
- the client authenticates with ``client_secret_basic``, ``client_secret_post``
  or ``private_key_jwt``; for the last, the client's keys are its ``jwks_uri``
  (hubgate's ``/sso/oidc/{id}/jwks``) or an inline ``jwks``.
- :func:`provider_login` fills in the provider's own login form (fields
  ``login`` and ``password``); :func:`provider_abort` presses its Cancel button,
  which answers ``access_denied`` to the client.
- :func:`pkce_pair`, :func:`authorization_url`, :func:`exchange_code` are a
  minimal relying party, to test the provider on its own.

The npm packages are installed by ``scripts/install-node-deps.sh`` (``npm ci``
in ``tests/e2e/oidc``); without node or without them, :func:`provider_missing`
says why and :func:`require_provider` skips the test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.e2e.conftest import HOST, _process, _tail, _wait_until
from tests.e2e.idp import Browser, HtmlForm, parse_forms
from tests.ports import free_port

__all__ = [
    "ACCOUNTS",
    "PROVIDER_DIR",
    "Account",
    "ProviderInfo",
    "abort_form",
    "authorization_url",
    "callback_params",
    "exchange_code",
    "generate_signing_key",
    "login_form",
    "node_binary",
    "pkce_pair",
    "provider_abort",
    "provider_login",
    "provider_missing",
    "public_jwk",
    "require_provider",
    "running_provider",
]

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc"
SCRIPT = PROVIDER_DIR / "provider.mjs"
CLIENT_ID = "hubgate-e2e"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
UNUSED_REDIRECT_URI = f"http://{HOST}:9/unused"


@dataclass(frozen=True)
class Account:
    """One user of the provider: what to type at its form, and the claims it releases."""

    login: str
    password: str
    sub: str
    email: str
    email_verified: bool
    name: str
    groups: tuple[str, ...]

    def claims(self) -> dict[str, object]:
        return {
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "preferred_username": self.login,
            "groups": list(self.groups),
        }


ACCOUNTS = {
    "alice": Account(
        "alice", "alicepass", "a1f2c3e4-0001", "alice@acme.test", True, "Alice Admin",
        ("hubgate-admins", "research"),
    ),
    "carol": Account(
        "carol", "carolpass", "c3a4r5o6-0003", "carol@acme.test", False, "Carol Contractor",
        ("research",),
    ),
}  # fmt: skip


def node_binary() -> str | None:
    return shutil.which("node")


def provider_missing() -> str | None:
    """Why the provider cannot run here, or ``None`` when it can."""
    if node_binary() is None:
        return "node is not installed (the OIDC provider runs on Node.js 20+)"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return (
            f"oidc-provider is not installed in {PROVIDER_DIR}/node_modules "
            "(run scripts/install-node-deps.sh)"
        )
    return None


def require_provider() -> None:
    """Skip the calling test when the provider cannot run."""
    missing = provider_missing()
    if missing:
        pytest.skip(missing)


def generate_signing_key(kid: str) -> dict[str, Any]:
    """A fresh RSA-2048 private key as a JWK, for RS256 signatures."""
    key = RSAKey.generate_key(2048, {"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
    return dict(key.as_dict(private=True))


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """A private JWK without its private members."""
    return {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}


# -- the provider -------------------------------------------------------------------


@dataclass
class ProviderInfo:
    """A running oidc-provider.

    ``keys`` are all the signing keys generated for it (private JWKs, index 0
    first); it signs with ``keys[key_index]`` and publishes ``published`` (the
    indexes of the keys in its JWKS, the signing one first). ``accounts`` are
    its users now (:data:`ACCOUNTS` at start); ``client_jwks_uri`` or
    ``client_jwks`` hold the client's keys, for ``private_key_jwt``. For logout,
    the client may register ``post_logout_redirect_uris`` and a
    ``backchannel_logout_uri`` (with ``backchannel_logout_session_required``).
    """

    issuer: str
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    auth_method: str
    keys: tuple[dict[str, Any], ...]
    key_index: int
    published: tuple[int, ...]
    conform_id_token_claims: bool
    groups_scope: str
    folder: Path
    accounts: dict[str, Account] = field(default_factory=lambda: dict(ACCOUNTS))
    client_jwks_uri: str | None = None
    client_jwks: dict[str, Any] | None = None
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    log_file: Path = field(init=False)
    _stack: ExitStack | None = field(default=None, repr=False)
    _starts: int = field(default=0, repr=False)

    @property
    def port(self) -> int:
        port = urlsplit(self.issuer).port
        assert port is not None
        return port

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def kid(self) -> str:
        """The ``kid`` of the key it signs with now."""
        return str(self.keys[self.key_index]["kid"])

    def public_jwks(self, indexes: Sequence[int] | None = None) -> dict[str, Any]:
        chosen = self.published if indexes is None else indexes
        return {"keys": [public_jwk(self.keys[i]) for i in chosen]}

    def discovery(self) -> dict[str, Any]:
        response = httpx.get(self.discovery_url, timeout=10.0)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(self.discovery()["jwks_uri"], timeout=10.0)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def restart(
        self,
        *,
        redirect_uris: Sequence[str] | None = None,
        key_index: int | None = None,
        publish: Sequence[int] | None = None,
        auth_method: str | None = None,
        conform_id_token_claims: bool | None = None,
        client_jwks_uri: str | None = None,
        client_jwks: Mapping[str, Any] | None = None,
        post_logout_redirect_uris: Sequence[str] | None = None,
        backchannel_logout_uri: str | None = None,
    ) -> None:
        """Stop the provider and start it again on the same port, with other
        redirect URIs, signing key (``key_index``; published alone unless
        ``publish`` lists more indexes), client auth method, claims setting,
        client keys (``client_jwks_uri`` or ``client_jwks``: one replaces the
        other) or logout URIs. Its sessions, codes and tokens are in memory: they
        are gone."""
        if post_logout_redirect_uris is not None:
            self.post_logout_redirect_uris = tuple(post_logout_redirect_uris)
        if backchannel_logout_uri is not None:
            self.backchannel_logout_uri = backchannel_logout_uri
        if client_jwks_uri is not None or client_jwks is not None:
            self.client_jwks_uri = client_jwks_uri
            self.client_jwks = dict(client_jwks) if client_jwks is not None else None
        if redirect_uris is not None:
            self.redirect_uris = tuple(redirect_uris)
        if key_index is not None:
            if not 0 <= key_index < len(self.keys):
                raise IndexError(f"the provider has {len(self.keys)} keys")
            self.key_index = key_index
            self.published = (key_index,)
        if publish is not None:
            extra = tuple(i for i in publish if i != self.key_index)
            self.published = (self.key_index, *extra)
        if auth_method is not None:
            self.auth_method = _checked_auth_method(auth_method)
        if conform_id_token_claims is not None:
            self.conform_id_token_claims = conform_id_token_claims
        self._stop()
        self._start()

    def set_account(
        self,
        login: str,
        *,
        password: str | None = None,
        sub: str | None = None,
        email: str | None = None,
        email_verified: bool | None = None,
        name: str | None = None,
        groups: Iterable[str] | None = None,
    ) -> Account:
        """Add account ``login`` or change it, from the next lookup on (no restart):
        what is not given stays as it was. A new account starts as
        ``{login}pass``, sub ``{login}-sub``, ``{login}@acme.test`` (verified), the
        capitalized login as name, no groups. The provider reads claims at each
        token and userinfo request, so the next sign-in carries the change."""
        if not login:
            raise ValueError("a login is not empty")
        now = self.accounts.get(login) or Account(
            login, f"{login}pass", f"{login}-sub", f"{login}@acme.test", True,
            login.capitalize(), (),
        )  # fmt: skip
        given = {
            "password": password, "sub": sub, "email": email, "email_verified": email_verified,
            "name": name, "groups": tuple(groups) if groups is not None else None,
        }  # fmt: skip
        account = replace(now, **{k: v for k, v in given.items() if v is not None})
        self.accounts[login] = account
        self._write_accounts()
        return account

    def remove_account(self, login: str) -> None:
        """Delete the account: its next login at the provider's form fails, and
        tokens for its sub carry no claims."""
        del self.accounts[login]
        self._write_accounts()

    def token_requests(self) -> list[str]:
        """The log lines of this run's token requests: ``POST /token STATUS
        authorization_header=yes|no`` (yes: client_secret_basic)."""
        return [
            line for line in self.log_file.read_text(errors="replace").splitlines()
            if line.startswith("POST /token ")
        ]  # fmt: skip

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_file, lines)

    # -- processes

    @property
    def _accounts_file(self) -> Path:
        return self.folder / "accounts.json"

    def _write_accounts(self) -> None:
        """Written next to the file and renamed over it: the provider never reads half."""
        accounts = {
            a.login: {"password": a.password, "sub": a.sub, "claims": a.claims()}
            for a in self.accounts.values()
        }
        staged = self.folder / "accounts.json.new"
        staged.write_text(json.dumps(accounts, indent=2))
        staged.chmod(0o600)
        os.replace(staged, self._accounts_file)

    def _client(self) -> dict[str, Any]:
        client: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "token_endpoint_auth_method": self.auth_method,
        }
        if self.client_jwks_uri is not None:
            client["jwks_uri"] = self.client_jwks_uri
        if self.client_jwks is not None:
            client["jwks"] = self.client_jwks
        if self.post_logout_redirect_uris:
            client["post_logout_redirect_uris"] = list(self.post_logout_redirect_uris)
        if self.backchannel_logout_uri is not None:
            client["backchannel_logout_uri"] = self.backchannel_logout_uri
        return client

    def _write_config(self) -> Path:
        jwks_file = self.folder / f"jwks-{self._starts}.json"
        jwks_file.write_text(json.dumps({"keys": [self.keys[i] for i in self.published]}))
        jwks_file.chmod(0o600)
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "jwks_file": str(jwks_file),
            "cookie_keys": [secrets.token_urlsafe(32)],
            "client": self._client(),
            "accounts_file": str(self._accounts_file),
            "conform_id_token_claims": self.conform_id_token_claims,
            "groups_scope": self.groups_scope,
        }
        path = self.folder / f"config-{self._starts}.json"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def _start(self) -> None:
        node = node_binary()
        assert node is not None
        config = self._write_config()
        self._write_accounts()
        self.log_file = self.folder / f"provider-{self._starts}.log"
        self._starts += 1
        env = {**os.environ, "OIDC_PROVIDER_CONFIG": str(config), "NODE_ENV": "test"}
        stack = ExitStack()
        process = stack.enter_context(
            _process([node, str(SCRIPT)], self.log_file, env=env, cwd=str(PROVIDER_DIR))
        )
        self._stack = stack
        try:
            _wait_until(self._ready, process, "oidc-provider", self.log_file)
        except BaseException:
            self._stop()
            raise

    def _ready(self) -> bool:
        try:
            response = httpx.get(self.discovery_url, timeout=1.0)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.json().get("issuer") == self.issuer

    def _stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


def _checked_auth_method(method: str) -> str:
    if method not in AUTH_METHODS:
        raise ValueError(f"token_endpoint_auth_method must be one of {AUTH_METHODS}")
    return method


@contextmanager
def running_provider(
    redirect_uri: str | Sequence[str] | None = None,
    auth_method: str = "client_secret_basic",
    key_index: int = 0,
    *,
    keys: int = 2,
    conform_id_token_claims: bool = True,
    groups_scope: str = "profile",
    client_secret: str | None = None,
) -> Iterator[ProviderInfo]:
    """oidc-provider on a free loopback port, with one confidential client.

    ``redirect_uri`` (one or several) are the client's registered redirect URIs;
    a relying party whose redirect URI is only known later (hubgate's holds the
    connection id, which exists once the connection was created from this
    provider's discovery document) gets it with :meth:`ProviderInfo.restart`.
    ``keys`` RS256 keys are generated; the provider signs with ``key_index`` and
    publishes only that one. ``conform_id_token_claims`` is oidc-provider's
    setting of that name: true (its default) releases the email and profile
    claims at userinfo only, false in the id_token too. ``groups`` rides on
    the ``groups_scope`` scope. ``client_secret`` is random unless given.
    """
    missing = provider_missing()
    if missing:
        raise RuntimeError(missing)
    if isinstance(redirect_uri, str):
        uris: tuple[str, ...] = (redirect_uri,)
    else:
        uris = tuple(redirect_uri or ()) or (UNUSED_REDIRECT_URI,)
    if not 0 <= key_index < keys:
        raise IndexError(f"key_index {key_index} of {keys} keys")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hubgate-oidc-") as folder:
        info = ProviderInfo(
            issuer=f"http://{HOST}:{port}",
            client_id=CLIENT_ID,
            client_secret=client_secret or secrets.token_urlsafe(32),
            redirect_uris=uris,
            auth_method=_checked_auth_method(auth_method),
            keys=tuple(generate_signing_key(f"e2e-{i}-{secrets.token_hex(4)}") for i in range(keys)),
            key_index=key_index,
            published=(key_index,),
            conform_id_token_claims=conform_id_token_claims,
            groups_scope=groups_scope,
            folder=Path(folder),
        )  # fmt: skip
        info._start()
        try:
            yield info
        finally:
            try:
                print(f"--- oidc-provider log (tail):\n{info.log_tail(30)}")
            finally:
                info._stop()


# -- at the provider, in a browser ------------------------------------------------------


def _form(page: httpx.Response, suffix: str) -> HtmlForm | None:
    forms = parse_forms(page.text, str(page.url))
    return next((f for f in forms if f.action.endswith(suffix) and f.method == "POST"), None)


def login_form(page: httpx.Response) -> HtmlForm | None:
    """The provider's sign-in form on ``page`` (``/interaction/UID/login``)."""
    return _form(page, "/login")


def abort_form(page: httpx.Response) -> HtmlForm | None:
    """The provider's Cancel button on ``page`` (``/interaction/UID/abort``)."""
    return _form(page, "/abort")


def _required(form: HtmlForm | None, page: httpx.Response, what: str) -> HtmlForm:
    if form is None:
        raise AssertionError(f"no {what} at {page.url} ({page.status_code}):\n{page.text[:2000]}")
    return form


def provider_login(
    browser: Browser, page: httpx.Response, account: Account, *, stop_at: str, password: str = ""
) -> httpx.Response:
    """Sign in at the provider's form on ``page``; follows the provider's redirects
    (consent is granted on its own) and returns the redirect that points at
    ``stop_at`` (the relying party's redirect URI), or the page the provider
    shows instead (its form again, after a wrong password)."""
    form = _required(login_form(page), page, "login form")
    fields = {"login": account.login, "password": password or account.password}
    answered = browser.submit(form, fields, follow=False)
    return browser.follow(answered, stop_at=stop_at)


def provider_abort(browser: Browser, page: httpx.Response, *, stop_at: str) -> httpx.Response:
    """Press Cancel at the provider's form: the redirect back with ``error=access_denied``."""
    form = _required(abort_form(page), page, "cancel button")
    return browser.follow(browser.submit(form, follow=False), stop_at=stop_at)


def callback_params(response: httpx.Response) -> dict[str, str]:
    """The query of the redirect in ``response`` (the authorization response)."""
    assert response.is_redirect, (
        f"{response.status_code} at {response.url}:\n{response.text[:2000]}"
    )
    location = str(response.url.join(response.headers["location"]))
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# -- a minimal relying party, to test the provider on its own -------------------------


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_url(
    info: ProviderInfo,
    *,
    state: str,
    nonce: str,
    challenge: str | None,
    redirect_uri: str | None = None,
    scope: str = "openid email profile",
) -> str:
    params = {
        "response_type": "code",
        "client_id": info.client_id,
        "redirect_uri": redirect_uri or info.redirect_uris[0],
        "scope": scope,
        "state": state,
        "nonce": nonce,
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    endpoint = info.discovery()["authorization_endpoint"]
    return str(httpx.URL(endpoint, params=params))


def exchange_code(
    info: ProviderInfo,
    code: str,
    verifier: str,
    *,
    redirect_uri: str | None = None,
    urlencode_basic: bool = True,
) -> httpx.Response:
    """The token request, authenticated the way the client is registered; for
    client_secret_basic the id and secret are form-urlencoded first (RFC 6749
    §2.3.1), unless ``urlencode_basic`` is false."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or info.redirect_uris[0],
        "code_verifier": verifier,
    }
    encode = (lambda text: quote_plus(text, safe="")) if urlencode_basic else str
    auth: tuple[str, str] | None = (encode(info.client_id), encode(info.client_secret))
    if info.auth_method == "client_secret_post":
        form |= {"client_id": info.client_id, "client_secret": info.client_secret}
        auth = None
    endpoint = info.discovery()["token_endpoint"]
    return httpx.post(endpoint, data=form, auth=auth, timeout=10.0)
