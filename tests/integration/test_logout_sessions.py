"""Which sessions a logout from the IdP ends (hubgate.sso.logout), read from the
attacker's side too: only authentications made through the connection that
speaks, only the person (and session) it names."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, SsoAuthentication, WebSession
from hubgate.runtime import Runtime
from hubgate.sso import logout
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, count, person, sso_org

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    org = sso_org(rt, world)
    org.set_mode("managed")
    return org


def _signed_in(rt: Runtime, acme: SsoOrg, email: str, **claims: object) -> TestClient:
    client = TestClient(create_app(runtime=rt))
    answer = acme.sign_in(client, **{**person(email), **claims})
    assert answer["status"] == 200, answer
    assert client.get("/api/v1/me").status_code == 200
    return client


def _end(rt: Runtime, named: logout.Named) -> int:
    with rt.db.transaction() as db:
        return logout.end_named(db, Actor.system(), named, reason="idp_logout")


def _signed_out(client: TestClient) -> bool:
    return client.get("/api/v1/me").status_code == 401


def test_a_sign_in_records_how_the_idp_named_it(rt: Runtime, acme: SsoOrg) -> None:
    _signed_in(rt, acme, "ada@acme.example", name_id="ada-42", name_id_format=PERSISTENT)
    with rt.db.transaction() as db:
        row = db.scalars(select(SsoAuthentication)).one()
    assert (row.idp_subject, row.idp_subject_format) == ("ada-42", PERSISTENT)
    assert row.idp_session and row.idp_session.startswith("_")  # the forge's SessionIndex
    assert row.id_token is None


def test_the_named_person_is_signed_out_and_no_one_else(rt: Runtime, acme: SsoOrg) -> None:
    ada = _signed_in(rt, acme, "ada@acme.example")
    ada_again = _signed_in(rt, acme, "ada@acme.example")
    bob = _signed_in(rt, acme, "bob@acme.example")
    ended = _end(rt, logout.Named(acme.connection_id, subject="ada@acme.example"))
    assert ended == 2
    assert _signed_out(ada) and _signed_out(ada_again) and not _signed_out(bob)
    assert count(rt, SsoAuthentication) == 1
    with rt.db.transaction() as db:
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "sso.logout")).one()
    assert event.reason == "idp_logout" and event.org_id == acme.org.id
    assert '"sessions_ended": 2' in (event.data or "")


def test_a_session_index_narrows_it_to_that_session(rt: Runtime, acme: SsoOrg) -> None:
    first = _signed_in(rt, acme, "ada@acme.example")
    second = _signed_in(rt, acme, "ada@acme.example")
    with rt.db.transaction() as db:
        indexes = list(
            db.scalars(select(SsoAuthentication.idp_session).order_by(SsoAuthentication.id))
        )
    named = logout.Named(acme.connection_id, subject="ada@acme.example", sessions=(indexes[0],))
    assert _end(rt, named) == 1
    assert _signed_out(first) and not _signed_out(second)


def test_nothing_ends_for_an_unknown_session_index(rt: Runtime, acme: SsoOrg) -> None:
    ada = _signed_in(rt, acme, "ada@acme.example")
    named = logout.Named(acme.connection_id, subject="ada@acme.example", sessions=("_other",))
    assert _end(rt, named) == 0
    assert not _signed_out(ada)


def test_another_connection_cannot_name_this_orgs_people(
    rt: Runtime, world: World, acme: SsoOrg
) -> None:
    """globex's IdP names ada (same NameID): her acme session stays."""
    globex = sso_org(rt, world, "globex", "globex.example")
    ada = _signed_in(rt, acme, "ada@acme.example")
    assert _end(rt, logout.Named(globex.connection_id, subject="ada@acme.example")) == 0
    assert not _signed_out(ada)
    assert count(rt, WebSession) >= 1


def test_a_nameid_under_another_format_names_no_one(rt: Runtime, acme: SsoOrg) -> None:
    ada = _signed_in(rt, acme, "ada@acme.example")  # emailAddress format
    named = logout.Named(acme.connection_id, subject="ada@acme.example", subject_format=PERSISTENT)
    assert _end(rt, named) == 0
    assert not _signed_out(ada)


def test_a_logout_names_someone() -> None:
    with pytest.raises(ValueError):
        logout.Named(1)


def test_sign_out_asks_nothing_of_an_idp_without_logout(rt: Runtime, acme: SsoOrg) -> None:
    ada = _signed_in(rt, acme, "ada@acme.example")
    page = ada.get("/", headers={"accept": "text/html"}).text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert csrf is not None
    out = ada.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signed-out"
    assert _signed_out(ada) and count(rt, SsoAuthentication) == 0
