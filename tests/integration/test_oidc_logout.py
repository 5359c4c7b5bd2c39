"""OpenID Connect logout over HTTP, in-process, against the provider of
test_oidc_flow.py (its network calls faked; the real provider is in
tests/e2e/test_oidc_logout.py): what a sign-in keeps for logout, Back-Channel
Logout 1.0 (by sid, by sub, replays, another org's provider) and RP-Initiated
Logout 1.0 (the redirect, the state, the page the browser comes back to)."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from hubgate.access import Principal
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, SsoAuthentication, WebSession
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import activation, connections, domains
from hubgate.sso.flows import oidc_logout
from hubgate.sso.oidc.discovery import ProviderMetadata
from hubgate.sso.oidc.logout_token import BACKCHANNEL_EVENT
from hubgate.sso.states import ConnectionState
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, count, oidc_org, sso_org
from tests.integration.test_oidc_flow import CLIENT, ISSUER, Provider, install

END_SESSION = f"{ISSUER}/session/end"
GLOBEX_ISSUER, GLOBEX_CLIENT = "https://idp.globex.example", "hubgate-globex"
PEOPLE = {"ada": "00u-ada", "bob": "00u-bob"}


class LogoutProvider:
    """The fake provider, advertising RP-initiated and back-channel logout, putting a
    fresh ``sid`` in each id_token, and signing logout tokens."""

    def __init__(self, fake: Provider) -> None:
        self.fake = fake
        self.other_keys: dict[str, RSAKey] = {}
        plain = fake.discovery

        def discovery(issuer: str = ISSUER) -> bytes:
            document = plain(issuer)[:-1].decode() + (
                f', "end_session_endpoint": "{END_SESSION}",'
                ' "backchannel_logout_supported": true,'
                ' "backchannel_logout_session_supported": true}'
            )
            return document.encode()

        fake.discovery = discovery  # type: ignore[method-assign]

    def fetch(self, url: str, **options: Any) -> bytes:
        """The JWKS of another provider (globex) by its issuer, else the fake's."""
        for issuer, key in self.other_keys.items():
            if url == f"{issuer}/jwks":
                return json.dumps(KeySet([key]).as_dict(private=False)).encode()
        return self.fake.fetch(url, **options)

    def logout_token(
        self, key: RSAKey | None = None, *, issuer: str = ISSUER, aud: str = CLIENT, **claims: Any
    ) -> str:
        now = int(datetime.now(UTC).timestamp())
        body = {
            "iss": issuer, "aud": aud, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4()),
            "events": {BACKCHANNEL_EVENT: {}}, **claims,
        }  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        signer = key or self.fake.key
        header = {"alg": "RS256", "kid": signer.kid, "typ": "logout+jwt"}
        return jwt.encode(header, body, signer, algorithms=["RS256"])


def install_logout(monkeypatch: pytest.MonkeyPatch) -> LogoutProvider:
    """The provider answering hubgate's fetches, the logout flow's too."""
    logout = LogoutProvider(install(monkeypatch))
    monkeypatch.setattr(oidc_logout, "fetch", logout.fetch)
    monkeypatch.setattr(oidc_logout, "_KEYS", {})
    monkeypatch.setattr(oidc_logout, "_REDISCOVERED", {})
    return logout


def managed_acme(rt: Runtime, world: World) -> SsoOrg:
    """acme, managed, with one active OIDC connection to the provider."""
    org = oidc_org(rt, world)
    org.set_mode("managed")
    return org


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> LogoutProvider:
    return install_logout(monkeypatch)


@pytest.fixture
def acme(world: World, rt: Runtime, provider: LogoutProvider) -> SsoOrg:
    return managed_acme(rt, world)


@dataclass
class Person:
    """One browser signed in through the provider: who, and the IdP session."""

    client: TestClient
    sub: str
    sid: str | None

    def signed_out(self) -> bool:
        return self.client.get("/api/v1/me").status_code == 401


def sign_in(
    rt: Runtime, provider: LogoutProvider, connection_id: int, name: str, *, sid: bool = True
) -> Person:
    client = TestClient(create_app(runtime=rt))
    session = f"sid-{secrets.token_hex(6)}" if sid else None
    claims = {"sub": PEOPLE[name], "email": f"{name}@acme.example", "name": name.title()}
    provider.fake.claims = {**provider.fake.claims, **claims, "sid": session}
    if session is None:
        del provider.fake.claims["sid"]
    start = client.get("/sso/acme/start", params={"next": "/acme"}, follow_redirects=False)
    answer = client.get(
        f"/sso/oidc/{connection_id}/callback",
        params=provider.fake.authorize(start.headers["location"]),
        headers={"accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    person = Person(client, PEOPLE[name], session)
    assert not person.signed_out()
    return person


def backchannel(rt: Runtime, connection_id: int, token: str) -> Any:
    """The provider's POST: a client of its own, no cookie."""
    with TestClient(create_app(runtime=rt)) as server:
        return server.post(
            f"/sso/oidc/{connection_id}/backchannel-logout", data={"logout_token": token}
        )


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db.transaction() as db:
        found = db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(found.all())


# -- what a sign-in keeps -------------------------------------------------------------


def test_a_sign_in_keeps_sub_sid_and_the_sealed_id_token(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    sign_in(rt, provider, acme.connection_id, "bob", sid=False)
    with rt.db.transaction() as db:
        rows = list(db.scalars(select(SsoAuthentication).order_by(SsoAuthentication.id)))
    assert [(r.idp_subject, r.idp_session) for r in rows] == [
        (PEOPLE["ada"], ada.sid), (PEOPLE["bob"], None),
    ]  # fmt: skip
    sealed = rows[0].id_token
    assert sealed is not None and not sealed.startswith("eyJ"), "stored sealed"
    token = rt.sealer.unseal(sealed)
    claims = jwt.decode(token, provider.fake.key, algorithms=["RS256"]).claims
    assert (claims["iss"], claims["sub"], claims["sid"]) == (ISSUER, PEOPLE["ada"], ada.sid)


# -- back-channel logout -------------------------------------------------------------


def test_a_logout_token_naming_a_sid_ends_that_session_only(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    first = sign_in(rt, provider, acme.connection_id, "ada")
    second = sign_in(rt, provider, acme.connection_id, "ada")
    bob = sign_in(rt, provider, acme.connection_id, "bob")
    answer = backchannel(rt, acme.connection_id, provider.logout_token(sid=first.sid))
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert first.signed_out()
    assert not second.signed_out() and not bob.signed_out()
    [event] = events(rt, "sso.logout")
    assert event.reason == "oidc_backchannel_logout" and event.org_id == acme.org.id


def test_a_logout_token_naming_a_sub_ends_all_of_their_sessions(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    first = sign_in(rt, provider, acme.connection_id, "ada")
    second = sign_in(rt, provider, acme.connection_id, "ada", sid=False)
    bob = sign_in(rt, provider, acme.connection_id, "bob")
    answer = backchannel(rt, acme.connection_id, provider.logout_token(sub=PEOPLE["ada"]))
    assert answer.status_code == 200
    assert first.signed_out() and second.signed_out() and not bob.signed_out()


def test_sub_and_sid_together_must_both_match(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    bob = sign_in(rt, provider, acme.connection_id, "bob")
    crossed = provider.logout_token(sub=PEOPLE["ada"], sid=bob.sid)
    assert backchannel(rt, acme.connection_id, crossed).status_code == 200
    assert not ada.signed_out() and not bob.signed_out()


def test_a_valid_token_naming_no_one_is_answered_200(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    answer = backchannel(rt, acme.connection_id, provider.logout_token(sid="sid-unknown"))
    assert answer.status_code == 200 and not ada.signed_out()
    assert '"sessions_ended": 0' in (events(rt, "sso.logout")[0].data or "")


def test_a_replayed_logout_token_is_refused_and_ends_nothing(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    token = provider.logout_token(sub=PEOPLE["ada"])
    sign_in(rt, provider, acme.connection_id, "ada")
    assert backchannel(rt, acme.connection_id, token).status_code == 200
    again = sign_in(rt, provider, acme.connection_id, "ada")
    replayed = backchannel(rt, acme.connection_id, token)
    assert replayed.status_code == 400 and replayed.headers["cache-control"] == "no-store"
    assert replayed.json()["error"] == "invalid_request"
    assert replayed.json()["code"] == "oidc_logout_replayed"
    assert not again.signed_out()
    [refused] = events(rt, "sso.logout_refused")
    assert refused.reason == "oidc_logout_replayed" and refused.org_id == acme.org.id


def globex(rt: Runtime, world: World, provider: LogoutProvider) -> int:
    """Org globex with its own active OIDC connection, to its own provider."""
    key = RSAKey.generate_key(2048, parameters={"kid": "globex-1"})
    provider.other_keys[GLOBEX_ISSUER] = key
    metadata = ProviderMetadata(
        GLOBEX_ISSUER, f"{GLOBEX_ISSUER}/authorize", f"{GLOBEX_ISSUER}/token",
        f"{GLOBEX_ISSUER}/jwks", None, True,
    )  # fmt: skip
    org = world.org("globex", world.user("admin@globex.example"))
    with rt.db.transaction() as db:
        org = db.merge(org)
        row = connections.create_oidc(
            db, rt, Actor.system(), operator_principal(), org, issuer=GLOBEX_ISSUER,
            client_id=GLOBEX_CLIENT, client_secret="globex-secret", provider=metadata,
        )  # fmt: skip
        domains.add(db, rt, Actor.system(), operator_principal(), org, "globex.example")
        domains.verify_by_operator(db, rt, Actor.system(), org, "globex.example")
        connections.mark_verified(row, rt)
        activation.activate(db, Actor.system(), Principal.operator(), row)
        return row.id


def test_another_orgs_provider_cannot_end_this_orgs_sessions(
    rt: Runtime, world: World, provider: LogoutProvider, acme: SsoOrg
) -> None:
    """globex's provider names ada's sub and sid: through globex's connection
    the token is valid and ends nothing; through acme's it is refused."""
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    globex_id = globex(rt, world, provider)
    key = provider.other_keys[GLOBEX_ISSUER]
    forged = {"sub": PEOPLE["ada"], "sid": ada.sid}
    theirs = provider.logout_token(key, issuer=GLOBEX_ISSUER, aud=GLOBEX_CLIENT, **forged)
    assert backchannel(rt, globex_id, theirs).status_code == 200
    assert not ada.signed_out()
    refused = backchannel(rt, acme.connection_id, theirs)
    assert refused.status_code == 400 and refused.json()["code"] == "oidc_logout_key_not_found"
    as_acme = provider.logout_token(key, **forged)  # acme's iss and aud, globex's key
    refused = backchannel(rt, acme.connection_id, as_acme)
    assert refused.status_code == 400 and refused.json()["code"] == "oidc_logout_key_not_found"
    assert not ada.signed_out() and count(rt, WebSession) == 1


def test_only_an_active_oidc_connection_takes_logout_tokens(
    rt: Runtime, world: World, provider: LogoutProvider, acme: SsoOrg
) -> None:
    """A verified (not yet active) connection never signed anyone in; an inactive
    one, another kind or an unknown id is not found; each refusal audited."""
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    token = provider.logout_token(sub=PEOPLE["ada"])
    saml = sso_org(rt, world, "globex", "globex.example").connection_id
    with rt.db.transaction() as db:
        connections.get(db, acme.connection_id).state = ConnectionState.VERIFIED.value
    answer = backchannel(rt, acme.connection_id, token)
    assert answer.status_code == 404 and answer.json()["code"] == "sso_connection_not_active"
    acme.set_mode("off")
    with rt.db.transaction() as db:
        row = connections.get(db, acme.connection_id)
        row.state = ConnectionState.ACTIVE.value
        activation.deactivate(db, Actor.system(), Principal.operator(), row)
    for connection_id in (acme.connection_id, saml, 999_999):
        answer = backchannel(rt, connection_id, token)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert not ada.signed_out()
    reasons = [e.reason for e in events(rt, "sso.logout_refused")]
    assert reasons == ["sso_connection_not_active", "not_found", "not_found", "not_found"]


# -- RP-initiated logout --------------------------------------------------------------


def _sign_out(person: Person) -> Any:
    page = person.client.get("/", headers={"accept": "text/html"}).text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert csrf is not None
    return person.client.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)


def _logged_out(client: TestClient, connection_id: int, state: str) -> str:
    page = client.get(f"/sso/oidc/{connection_id}/logged-out", params={"state": state})
    assert page.status_code == 200
    return page.text


def test_sign_out_goes_on_to_the_providers_end_session_endpoint(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    with rt.db.transaction() as db:
        sealed = db.scalars(select(SsoAuthentication.id_token)).one()
    out = _sign_out(ada)
    assert out.status_code == 303
    location = urlsplit(out.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == END_SESSION
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["id_token_hint"] == rt.sealer.unseal(str(sealed))
    assert query["client_id"] == CLIENT
    logged_out = f"http://testserver/sso/oidc/{acme.connection_id}/logged-out"
    assert query["post_logout_redirect_uri"] == logged_out
    assert len(query["state"]) >= 32
    assert ada.signed_out(), "the session here ended before the browser left"
    assert count(rt, SsoAuthentication) == 0
    [asked] = events(rt, "sso.logout_requested")
    assert asked.reason == "sign_out"

    assert "did not confirm" in _logged_out(ada.client, acme.connection_id, "not-the-state")
    confirmed = _logged_out(ada.client, acme.connection_id, query["state"])
    assert f"and of <strong>{ISSUER}</strong>" in confirmed
    again = _logged_out(ada.client, acme.connection_id, query["state"])
    assert "did not confirm" in again, "the state is spent once"


def test_the_state_is_bound_to_the_browser_that_signed_out(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    state = parse_qs(urlsplit(_sign_out(ada).headers["location"]).query)["state"][0]
    elsewhere = TestClient(create_app(runtime=rt))
    assert "did not confirm" in _logged_out(elsewhere, acme.connection_id, state)
    assert "and of <strong>" in _logged_out(ada.client, acme.connection_id, state)


def test_a_return_without_state_or_to_an_unknown_connection_is_no_error(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    _sign_out(ada)
    assert "did not confirm" in ada.client.get(f"/sso/oidc/{acme.connection_id}/logged-out").text
    unknown = ada.client.get("/sso/oidc/999999/logged-out", params={"state": "x" * 5000})
    assert unknown.status_code == 200 and "signed out of hubgate in this browser" in unknown.text


def test_rp_logout_off_signs_out_here_only(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    with rt.db.transaction() as db:
        row = connections.get(db, acme.connection_id)
        connections.update_oidc(
            db, rt, Actor.system(), Principal.operator(), row, {"rp_logout": False}
        )
    assert oidc_logout.registration(rt, row).rp_logout_active is False
    out = _sign_out(ada)
    assert out.headers["location"] == "/signed-out" and ada.signed_out()


def test_what_an_admin_registers_at_the_provider(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    with rt.db.transaction() as db:
        row = connections.oidc_endpoint(db, acme.connection_id)
    found = oidc_logout.registration(rt, row)
    base = f"http://testserver/sso/oidc/{acme.connection_id}"
    assert found.rp_logout_active is True
    assert found.backchannel_logout_uri == f"{base}/backchannel-logout"
    assert found.post_logout_redirect_uri == f"{base}/logged-out"


def test_a_connection_stored_before_logout_metadata_is_discovered_again(
    rt: Runtime, provider: LogoutProvider, acme: SsoOrg
) -> None:
    """Its stored metadata has no end_session_endpoint key at all: sign-out reads
    the provider's discovery again (no transaction open: the network guard)."""
    with rt.db.transaction() as db:
        row = connections.get(db, acme.connection_id)
        settings = json.loads(row.settings)
        for name in ("end_session_endpoint", "backchannel_logout_supported",
                     "backchannel_logout_session_supported"):  # fmt: skip
            del settings["provider"][name]
        row.settings = json.dumps(settings)
    ada = sign_in(rt, provider, acme.connection_id, "ada")
    assert _sign_out(ada).headers["location"].startswith(END_SESSION + "?")
    assert ada.signed_out()
