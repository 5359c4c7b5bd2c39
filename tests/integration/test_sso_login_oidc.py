"""The SSO policy behind an OIDC connection, in-process (the provider of
test_oidc_flow.py): the IdP's ``email_verified`` decides whether an email may
create or link an account."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hubgate.db.models import AuditEvent, Membership, SsoLink, User, WebSession
from hubgate.runtime import Runtime
from tests.conftest import World
from tests.integration.sso_world import count, oidc_org
from tests.integration.test_oidc_flow import ISSUER, Provider, install


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return install(monkeypatch)


@pytest.fixture
def managed(world: World, rt: Runtime, provider: Provider) -> int:
    """acme, managed, domain acme.example verified, one active OIDC connection."""
    acme = oidc_org(rt, world)
    acme.set_mode("managed")
    return acme.connection_id


def _sign_in(client: TestClient, provider: Provider, connection_id: int) -> dict[str, object]:
    start = client.get("/sso/acme/start", params={"next": "/acme"}, follow_redirects=False)
    answer = client.get(
        f"/sso/oidc/{connection_id}/callback", params=provider.authorize(start.headers["location"]),
        headers={"accept": "application/json"},
    )  # fmt: skip
    return {"status": answer.status_code, **answer.json()}


def test_a_vouched_email_creates_the_account(
    client: TestClient, rt: Runtime, provider: Provider, managed: int
) -> None:
    answer = _sign_in(client, provider, managed)
    assert answer["status"] == 200 and answer["created"] is True
    me = client.get("/api/v1/me").json()
    assert me["emails"][0] == {"address": "ada@acme.example", "verified": True, "primary": True}
    with rt.db.transaction() as db:
        link = db.query(SsoLink).one()
    assert link.subject == f"{ISSUER} 00u1"


@pytest.mark.parametrize("claims", [{"email_verified": False}, {"email_verified": "true"}, {}])
def test_an_email_the_idp_does_not_vouch_for_is_refused(
    client: TestClient, rt: Runtime, provider: Provider, managed: int, claims: dict[str, object]
) -> None:
    provider.claims.pop("email_verified")
    provider.claims.update(claims)
    before = [count(rt, m) for m in (User, Membership, SsoLink, WebSession)]
    answer = _sign_in(client, provider, managed)
    assert (answer["status"], answer["error"]) == (403, "email_unverified")
    assert [count(rt, m) for m in (User, Membership, SsoLink, WebSession)] == before


def test_a_refused_callback_stays_spent(
    client: TestClient, rt: Runtime, provider: Provider, managed: int
) -> None:
    """The policy's refusal rolls back the callback's transaction; the state it
    consumed is consumed again, so the same callback cannot be tried twice."""
    provider.claims["email_verified"] = False
    start = client.get("/sso/acme/start", params={"next": "/acme"}, follow_redirects=False)
    params = provider.authorize(start.headers["location"])
    callback, accept = f"/sso/oidc/{managed}/callback", {"accept": "application/json"}
    first = client.get(callback, params=params, headers=accept)
    assert (first.status_code, first.json()["error"]) == (403, "email_unverified")
    again = client.get(callback, params=params, headers=accept)
    assert (again.status_code, again.json()["error"]) == (400, "oidc_state_invalid")
    with rt.db.transaction() as db:
        events = db.query(AuditEvent).filter(AuditEvent.action.like("sso.%login%"))
        reasons = [e.reason for e in events.order_by(AuditEvent.id)]
        verified = db.query(AuditEvent).filter(AuditEvent.action == "sso.identity_verified")
        assert reasons == ["email_unverified", "oidc_state_invalid"] and verified.count() == 1


def test_a_repeat_sign_in_seals_the_id_token_before_its_first_write(
    client: TestClient, rt: Runtime, provider: Provider, managed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """On SQLite a transaction holds the one write lock from its first write to its
    end, so the policy seals the id_token it keeps for logout before that write:
    in the policy's transaction, only reads come before the seal."""
    assert _sign_in(client, provider, managed)["status"] == 200
    trail: list[str] = []
    seal = rt.sealer.seal

    def sealing(plaintext: str) -> str:
        trail.append("seal")
        return seal(plaintext)

    def statement(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        trail.append(sql.split(None, 1)[0].upper())

    def committed(_conn: object) -> None:
        trail.append("COMMIT")

    monkeypatch.setattr(rt.sealer, "seal", sealing)
    event.listen(rt.db.engine, "before_cursor_execute", statement)
    event.listen(rt.db.engine, "commit", committed)
    try:
        assert _sign_in(client, provider, managed)["status"] == 200
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", statement)
        event.remove(rt.db.engine, "commit", committed)
    assert trail.count("seal") == 1
    sealed = trail.index("seal")
    begun = max(i for i, step in enumerate(trail[:sealed]) if step == "COMMIT") + 1
    reads, rest = trail[begun:sealed], trail[sealed + 1 :]
    assert reads and not _WRITES & set(reads), reads  # the policy's reads, nothing written
    assert _WRITES & set(rest[: rest.index("COMMIT")])  # its writes come after


_WRITES = {"INSERT", "UPDATE", "DELETE"}
