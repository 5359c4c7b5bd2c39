"""Attacks on the OIDC back-channel logout endpoint (Back-Channel Logout 1.0),
over HTTP against the in-process provider of tests/integration/test_oidc_logout.py.

Whoever can reach ``POST /sso/oidc/{id}/backchannel-logout`` may post anything:
every refusal must be ``400`` with the reason code in the body, audited as
``sso.logout_refused`` with that code, never cached, never a 500, and must end
no session. The forged tokens that carry a valid signature prove the check
itself refuses them, not the cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwe
from joserfc.jwk import RSAKey
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.db.models import AuditEvent, SsoAuthentication, WebSession
from hubgate.runtime import Runtime
from hubgate.sso.flows import oidc_logout
from hubgate.sso.oidc.logout_token import BACKCHANNEL_EVENT
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, count
from tests.integration.test_oidc_flow import CLIENT, ISSUER, SECRET
from tests.integration.test_oidc_logout import (
    PEOPLE,
    LogoutProvider,
    Person,
    install_logout,
    managed_acme,
    sign_in,
)

Forge = Callable[[LogoutProvider, Person, Runtime], str]


@pytest.fixture(name="provider")
def _provider(monkeypatch: pytest.MonkeyPatch) -> LogoutProvider:
    return install_logout(monkeypatch)


@pytest.fixture(name="acme")
def _acme(world: World, rt: Runtime, provider: LogoutProvider) -> SsoOrg:
    return managed_acme(rt, world)


def _part(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _body(person: Person, **changes: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    body = {
        "iss": ISSUER, "aud": CLIENT, "iat": now, "jti": str(uuid.uuid4()),
        "sub": person.sub, "sid": person.sid, "events": {BACKCHANNEL_EVENT: {}}, **changes,
    }  # fmt: skip
    return {k: v for k, v in body.items() if v is not None}


def alg_none(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """An unsigned token (RFC 8725 §2.1)."""
    return f"{_part({'alg': 'none'})}.{_part(_body(person))}."


def hs256_with_the_client_secret(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """MACed with the client secret, which a provider's token never is here: the
    connection allows only asymmetric algorithms."""
    head = f"{_part({'alg': 'HS256', 'typ': 'logout+jwt'})}.{_part(_body(person))}"
    mac = hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def hs256_with_the_public_key(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """Key confusion: HMAC keyed with the provider's public key PEM."""
    head = f"{_part({'alg': 'HS256', 'kid': 'k1'})}.{_part(_body(person))}"
    mac = hmac.new(provider.fake.key.as_pem(private=False), head.encode(), hashlib.sha256)
    return head + "." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def attacker_key_same_kid(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    attacker = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    return provider.logout_token(attacker, sub=person.sub, sid=person.sid)


def attacker_key_in_jku(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """RFC 8725 §3.10: a header that names where to get the key is refused."""
    token = provider.logout_token(sub=person.sub)
    header = {"alg": "RS256", "kid": "k1", "jku": "https://evil.example/jwks"}
    return _part(header) + token[token.index(".") :]


def the_id_token_itself(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """The person's own id_token, signed by the right provider for the right client
    (as a log or a browser history leaks it): it has a nonce and no events."""
    with rt.db.transaction() as db:
        sealed = db.scalars(select(SsoAuthentication.id_token)).first()
    return rt.sealer.unseal(str(sealed))


def with_a_nonce(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token(sub=person.sub, nonce="n-0S6_WzA2Mj")


def events_not_an_object(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token(sub=person.sub, events={BACKCHANNEL_EVENT: True})


def for_another_client(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token(aud="another-client", sub=person.sub)


def from_another_issuer(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token(issuer="https://idp.evil.example", sub=person.sub)


def stale(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """Captured and replayed after the window, when its jti is no longer kept."""
    old = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    return provider.logout_token(sub=person.sub, iat=old, exp=None)


def from_the_future(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    later = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    return provider.logout_token(sub=person.sub, iat=later)


def without_jti(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token(sub=person.sub, jti=None)


def naming_no_one(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token()


def encrypted(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    inner = provider.logout_token(sub=person.sub).encode()
    return jwe.encrypt_compact({"alg": "RSA-OAEP", "enc": "A256GCM"}, inner, provider.fake.key)


def oversized(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return provider.logout_token(sub=person.sub, padding="x" * 64 * 1024)


def empty(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    return ""


def deep_json(provider: LogoutProvider, person: Person, rt: Runtime) -> str:
    """A header nested past any sane depth: refused before it is parsed as JSON."""
    return base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=") + ".e30.sig"


ATTACKS: dict[str, tuple[Forge, str]] = {
    "alg-none": (alg_none, "oidc_logout_algorithm_refused"),
    "hs256-client-secret": (hs256_with_the_client_secret, "oidc_logout_algorithm_refused"),
    "hs256-public-key": (hs256_with_the_public_key, "oidc_logout_algorithm_refused"),
    "attacker-key-same-kid": (attacker_key_same_kid, "oidc_logout_signature_invalid"),
    "attacker-key-in-jku": (attacker_key_in_jku, "oidc_logout_header_refused"),
    "the-id-token": (the_id_token_itself, "oidc_logout_event_missing"),
    "nonce": (with_a_nonce, "oidc_logout_nonce_present"),
    "events-not-an-object": (events_not_an_object, "oidc_logout_event_missing"),
    "another-client": (for_another_client, "oidc_logout_audience_mismatch"),
    "another-issuer": (from_another_issuer, "oidc_logout_issuer_mismatch"),
    "stale": (stale, "oidc_logout_time_invalid"),
    "future": (from_the_future, "oidc_logout_time_invalid"),
    "no-jti": (without_jti, "oidc_logout_jti_missing"),
    "naming-no-one": (naming_no_one, "oidc_logout_subject_missing"),
    "jwe": (encrypted, "oidc_logout_token_encrypted"),
    "oversized": (oversized, "oidc_logout_token_malformed"),
    "empty": (empty, "oidc_logout_token_malformed"),
    "deep-json": (deep_json, "oidc_logout_token_malformed"),
}


def _post(rt: Runtime, connection_id: int | str, **request: Any) -> Any:
    with TestClient(create_app(runtime=rt), raise_server_exceptions=False) as server:
        return server.post(f"/sso/oidc/{connection_id}/backchannel-logout", **request)


def _refusals(rt: Runtime) -> list[str | None]:
    with rt.db.transaction() as db:
        found = db.scalars(select(AuditEvent).where(AuditEvent.action == "sso.logout_refused"))
        return [event.reason for event in found]


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_refused_audited_and_nothing_ends(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg, attack: str
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    forge, code = ATTACKS[attack]
    token = forge(provider, ada, rt)
    answer = _post(rt, acme.connection_id, data={"logout_token": token})
    assert answer.status_code == 400, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json()["error"] == "invalid_request" and answer.json()["code"] == code
    assert answer.json()["error_description"]
    assert _refusals(rt) == [code]
    assert not ada.signed_out() and count(rt, WebSession) == 1


def test_a_valid_signature_alone_proves_the_forgeries_are_refused_by_their_checks(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    """The same provider key, with the claims right, is taken: the refusals above
    are the checks', not a broken signature."""
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    answer = _post(
        rt, acme.connection_id, data={"logout_token": provider.logout_token(sid=ada.sid)}
    )
    assert answer.status_code == 200 and ada.signed_out()


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"json": {"logout_token": "x"}}, id="json-body"),
        pytest.param({"content": b"\xff\xfe logout_token=\x00"}, id="binary-body"),
        pytest.param({"data": {"token": "x"}}, id="wrong-field"),
        pytest.param(
            {
                "content": b"logout_token=" + b"A" * 600_000,
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            id="huge-form",
        ),  # fmt: skip
    ],
)
def test_a_malformed_request_is_never_a_500(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg, request_: dict[str, Any]
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    answer = _post(rt, acme.connection_id, **request_)
    assert 400 <= answer.status_code < 500, answer.text
    assert not ada.signed_out()


def test_a_flood_of_unknown_kids_costs_one_key_refetch(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    fetched: list[str] = []

    def counting(url: str, **options: Any) -> bytes:
        fetched.append(url)
        return provider.fetch(url, **options)

    monkeypatch.setattr(oidc_logout, "fetch", counting)
    for n in range(5):
        key = RSAKey.generate_key(2048, parameters={"kid": f"random-{n}"})
        answer = _post(rt, acme.connection_id, data={"logout_token": provider.logout_token(key)})
        assert answer.json()["code"] == "oidc_logout_key_not_found"
    assert len(fetched) == 2, "the first fetch, then at most one refetch per cooldown"
    assert not ada.signed_out() and PEOPLE["ada"] == ada.sub


@pytest.mark.parametrize("path_id", ["0", "-1", "abc", "١٢", "9" * 40, "1%00"])
def test_a_path_that_names_no_connection_is_404_in_the_same_form(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg, path_id: str
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    token = provider.logout_token(sub=ada.sub)
    answer = _post(rt, path_id, data={"logout_token": token})
    assert answer.status_code == 404 and answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "error": "invalid_request", "error_description": "No such OIDC connection.",
        "code": "not_found",
    }  # fmt: skip
    assert not ada.signed_out() and _refusals(rt) == ["not_found"]
