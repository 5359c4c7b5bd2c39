"""The OIDC sign-in over HTTP, in-process, against a provider we control (its
network calls are faked; the real-provider flow is in tests/e2e): state, browser
binding, provider errors, RFC 9207 iss, PKCE binding, nonce, userinfo."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import func, select

from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import Ephemeral, SsoConnection, WebSession
from hubgate.errors import BadRequest
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.flows import oidc as oidc_flow
from tests import network_guard
from tests.conftest import World

ISSUER = "https://idp.acme.example"
CLIENT, SECRET = "hubgate-acme", "s3cret"


class Provider:
    """An OpenID provider in a dict: issues codes bound to PKCE challenges."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, Any] = {"email": "ada@acme.example", "email_verified": True,
                                       "name": "Ada", "groups": ["research", "admins"]}  # fmt: skip
        self.userinfo_sub: str | None = None
        self.iss_supported = True
        self.token_requests: list[tuple[dict[str, str], tuple[str, str] | None]] = []

    def discovery(self, issuer: str = ISSUER) -> bytes:
        return json.dumps({
            "issuer": issuer, "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
            "userinfo_endpoint": f"{ISSUER}/userinfo", "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": self.iss_supported,
        }).encode()  # fmt: skip

    def authorize(self, url: str) -> dict[str, str]:
        """The user signs in: a code bound to this request's challenge and nonce."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        return {"code": code, "state": query["state"], "iss": ISSUER}

    def token(self, form: dict[str, str]) -> bytes:
        request = self.codes.pop(form["code"], None)
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if request is None or request["code_challenge"] != challenge:
            return json.dumps({"error": "invalid_grant"}).encode()
        now = int(datetime.now(UTC).timestamp())
        claims = {"iss": ISSUER, "sub": "00u1", "aud": CLIENT, "nonce": request["nonce"],
                  "iat": now, "exp": now + 300, **self.claims}  # fmt: skip
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key, algorithms=["RS256"])
        return json.dumps(
            {"id_token": token, "access_token": "at", "token_type": "Bearer"}
        ).encode()

    def fetch(self, url: str, **_: Any) -> bytes:
        network_guard.outbound(f"fake fetch {url}")  # stands in for hubgate.sso.fetch
        if url.endswith("/jwks"):
            return json.dumps(KeySet([self.key]).as_dict(private=False)).encode()
        if url.endswith("/userinfo"):
            return json.dumps({"sub": self.userinfo_sub or "00u1", **self.claims}).encode()
        if url.endswith("/.well-known/openid-configuration"):
            return self.discovery()
        raise BadRequest("unreachable", code="fetch_failed")


def install(monkeypatch: pytest.MonkeyPatch) -> Provider:
    """A Provider answering hubgate's fetches and token requests (which it keeps)."""
    fake = Provider()

    def post_form(url: str, form: dict[str, str], **options: Any) -> bytes:
        network_guard.outbound(f"fake POST {url}")
        fake.token_requests.append((dict(form), options.get("auth")))
        return fake.token(form)

    monkeypatch.setattr(oidc_flow, "post_form", post_form)
    monkeypatch.setattr(oidc_flow, "post_form_on_loop", on_loop(post_form))
    answer_fetches(monkeypatch, fake.fetch)
    monkeypatch.setattr(oidc_flow, "_KEYS", {})
    return fake


def answer_fetches(monkeypatch: pytest.MonkeyPatch, fetch: Callable[..., bytes]) -> None:
    """``fetch`` answers every GET to the provider: discovery, keys and userinfo,
    from a network thread or awaited on the event loop."""
    monkeypatch.setattr(oidc_flow, "fetch", fetch)
    monkeypatch.setattr(oidc_flow, "get_on_loop", on_loop(fetch))
    monkeypatch.setattr(connections, "fetch", fetch)


def on_loop(call: Callable[..., bytes]) -> Callable[..., Awaitable[bytes]]:
    """``call`` as the event loop's fetcher (:mod:`hubgate.sso.fetch_loop`) is called."""

    async def awaited(*args: Any, **options: Any) -> bytes:
        with network_guard.awaited():
            return call(*args, **options)

    return awaited


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    yield install(monkeypatch)


@pytest.fixture
def connection_id(world: World, rt: Runtime, provider: Provider) -> int:
    return acme_connection(world, rt)


def acme_connection(world: World, rt: Runtime) -> int:
    """Org acme and its OIDC connection to the (installed) :class:`Provider`."""
    org = world.org("acme", world.user("admin@acme.test"))
    discovered = connections.discover(rt, ISSUER)
    with rt.db.transaction() as db:
        return connections.create_oidc(
            db, rt, Actor.system(), operator_principal(), db.merge(org),
            issuer=ISSUER, client_id=CLIENT, client_secret=SECRET, provider=discovered,
        ).id  # fmt: skip


def _start(client: TestClient) -> str:
    response = client.get("/sso/acme/start", params={"next": "/acme"}, follow_redirects=False)
    assert response.status_code == 303
    return str(response.headers["location"])


def _callback(client: TestClient, connection: int, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(
        f"/sso/oidc/{connection}/callback", params=params, headers={"accept": "application/json"}
    )
    return {"status": response.status_code, **response.json()}


def _rows(rt: Runtime) -> tuple[int, int]:
    with rt.db.transaction() as db:
        count = lambda model: int(db.scalar(select(func.count()).select_from(model)) or 0)  # noqa: E731
        return count(Ephemeral), count(WebSession)


def test_a_complete_sign_in(
    client: TestClient, rt: Runtime, provider: Provider, connection_id: int
) -> None:
    answer = _callback(client, connection_id, provider.authorize(_start(client)))
    assert answer["status"] == 200 and answer["next"] == "/acme"
    identity = answer["identity"]
    assert identity["subject"] == f"{ISSUER} 00u1" and identity["email_verified"] is True
    assert identity["groups"] == ["research", "admins"]
    assert identity["attributes"]["email_verified"] == ["true"]
    assert not {"nonce", "aud", "exp", "iat", "iss"} & identity["attributes"].keys()
    with rt.db.transaction() as db:
        assert db.get(SsoConnection, connection_id).state == "verified"  # type: ignore[union-attr]
        stored = db.get(SsoConnection, connection_id)
        assert stored is not None and SECRET not in stored.settings


def test_state_missing_reused_or_from_another_browser(
    client: TestClient, rt: Runtime, provider: Provider, connection_id: int
) -> None:
    params = provider.authorize(_start(client))
    assert (
        _callback(client, connection_id, {**params, "state": ""})["error"] == "oidc_state_invalid"
    )
    thief = TestClient(create_app(runtime=rt))
    assert _callback(thief, connection_id, params)["error"] == "oidc_state_invalid"
    assert _callback(client, connection_id, params)["status"] == 200
    assert _callback(client, connection_id, params)["error"] == "oidc_state_invalid"


def test_provider_errors_and_mix_up(
    client: TestClient, rt: Runtime, provider: Provider, connection_id: int
) -> None:
    params = provider.authorize(_start(client))
    denied = _callback(client, connection_id, {"state": params["state"], "error": "access_denied"})
    assert denied["error"] == "oidc_provider_error" and "access_denied" in denied["message"]
    params = provider.authorize(_start(client))
    mixed = _callback(client, connection_id, {**params, "iss": "https://other-org-idp.example"})
    assert mixed["error"] == "oidc_issuer_mismatch"
    params = provider.authorize(_start(client))
    no_iss = {k: v for k, v in params.items() if k != "iss"}
    assert _callback(client, connection_id, no_iss)["error"] == "oidc_issuer_mismatch"


def test_a_code_injected_from_another_session_is_bound_by_pkce(
    client: TestClient, rt: Runtime, provider: Provider, connection_id: int
) -> None:
    stolen = provider.authorize(_start(TestClient(create_app(runtime=rt))))
    mine = provider.authorize(_start(client))
    sessions = _rows(rt)[1]
    injected = _callback(client, connection_id, {**mine, "code": stolen["code"]})
    assert injected["error"] == "oidc_token_exchange_failed"
    assert _rows(rt)[1] == sessions, "a refusal opens no session"
    # The refused callback spent its state: replayed, it never reaches the provider.
    exchanges = len(provider.token_requests)
    replayed = _callback(client, connection_id, {**mine, "code": stolen["code"]})
    assert replayed["error"] == "oidc_state_invalid"
    assert len(provider.token_requests) == exchanges


def test_nonce_and_userinfo_subject(
    client: TestClient, rt: Runtime, provider: Provider, connection_id: int
) -> None:
    provider.claims = {
        "nonce": "someone-else",
        "email": "x@acme.example",
        "email_verified": True,
        "name": "X",
    }
    assert (
        _callback(client, connection_id, provider.authorize(_start(client)))["error"]
        == "oidc_nonce_mismatch"
    )
    provider.claims = {}
    provider.userinfo_sub = "another-user"
    answer = _callback(client, connection_id, provider.authorize(_start(client)))
    assert answer["error"] == "oidc_userinfo_mismatch"


def test_unverified_email_is_not_vouched_for(
    client: TestClient, rt: Runtime, provider: Provider, connection_id: int
) -> None:
    provider.claims = {
        "email": "carol@acme.example",
        "email_verified": False,
        "name": "Carol",
        "groups": "a b",
    }
    identity = _callback(client, connection_id, provider.authorize(_start(client)))["identity"]
    assert identity["email_verified"] is False and identity["groups"] == ["a", "b"]


def test_discovery_naming_another_issuer_is_refused(
    world: World, rt: Runtime, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused when fetched (before any transaction), and by the connection's own
    check if a provider of another issuer is given anyway."""
    org = world.org("acme", world.user("admin@acme.test"))
    monkeypatch.setattr(
        connections, "fetch", lambda url, **_: provider.discovery("https://evil.example")
    )
    with pytest.raises(BadRequest) as caught:
        connections.discover(rt, ISSUER)
    assert caught.value.code == "oidc_issuer_mismatch"
    evil = connections.discover(rt, "https://evil.example")
    with pytest.raises(BadRequest) as refused, rt.db.transaction() as db:
        connections.create_oidc(
            db, rt, Actor.system(), operator_principal(), db.merge(org),
            issuer=ISSUER, client_id=CLIENT, client_secret=SECRET, provider=evil,
        )  # fmt: skip
    assert refused.value.code == "invalid_setting"
    with rt.db.transaction() as db:
        assert db.scalar(select(func.count()).select_from(SsoConnection)) == 0
