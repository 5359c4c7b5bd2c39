"""SAML Single Logout over HTTP (SAML profiles §4.4), in-process, with the test
IdP of tests/security/saml_forge.py: the connection keeps the IdP's
SingleLogoutService, the SP metadata publishes hubgate's, an IdP-initiated
logout ends exactly the sessions it names and is answered with a signed
LogoutResponse, and sign-out goes on to the IdP and reads its answer. The
attacks are in tests/security/test_saml_logout_attacks.py; the real IdP in
tests/e2e/test_saml_simplesamlphp.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, SsoAuthentication, SsoConnection, WebSession
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.saml.metadata import POST, REDIRECT
from tests.conftest import World, sign_in
from tests.integration.slo_world import (
    IDP_SLO,
    IDP_SLO_ANSWERS,
    csrf_token,
    idp_sessions,
    logout_claims,
    logout_query,
    post_message,
    post_to_slo,
    posted_to_idp,
    sent_to_idp,
    signed_in,
    signed_out,
    slo_metadata,
    slo_org,
    to_slo,
)
from tests.integration.sso_world import SsoOrg, count, sso_org
from tests.security.saml_forge import (
    NS,
    PARTIAL_LOGOUT,
    build_logout_response,
    post_value,
    session_keys,
)

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
ADA, BOB = "ada@acme.example", "bob@acme.example"


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return slo_org(rt, world)


def _events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db.transaction() as db:
        found = db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(found)


def _status(root: Any) -> tuple[str | None, str | None]:
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    nested = code.find("samlp:StatusCode", NS)
    return code.get("Value"), nested.get("Value") if nested is not None else None


def _single_logout(rt: Runtime, connection_id: int) -> connections.SingleLogout:
    with rt.db.transaction() as db:
        return connections.single_logout(rt, db.get_one(SsoConnection, connection_id))


# -- the connection and the metadata ------------------------------------------------------


def test_the_sp_metadata_publishes_the_single_logout_service(
    rt: Runtime, acme: SsoOrg, world: World
) -> None:
    client = signed_in(rt, acme, ADA)
    root = etree.fromstring(client.get(f"/sso/saml/{acme.connection_id}/metadata").content)
    md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
    services = root.findall(f"{md}SPSSODescriptor/{md}SingleLogoutService")
    expected = f"http://testserver/sso/saml/{acme.connection_id}/slo"
    assert [(s.get("Binding"), s.get("Location")) for s in services] == [
        (REDIRECT, expected), (POST, expected),
    ]  # fmt: skip


def test_the_connection_keeps_the_idps_single_logout_service(rt: Runtime, acme: SsoOrg) -> None:
    shown = _single_logout(rt, acme.connection_id)
    assert shown == connections.SingleLogout(
        True, f"http://testserver/sso/saml/{acme.connection_id}/slo", IDP_SLO
    )
    with rt.db.transaction() as db:
        config = connections.saml_config(rt, db.get_one(SsoConnection, acme.connection_id))
    assert config.idp_slo is not None
    assert (config.idp_slo.binding, config.idp_slo.response_url) == (REDIRECT, IDP_SLO_ANSWERS)


def test_an_admin_turns_single_logout_off_and_on(rt: Runtime, acme: SsoOrg) -> None:
    for value in (False, True):
        with rt.db.transaction() as db:
            row = db.get_one(SsoConnection, acme.connection_id)
            connections.update_settings(
                db, Actor.system(), operator_principal(), row, {"single_logout": value}
            )
        assert _single_logout(rt, acme.connection_id).active is value


@pytest.mark.parametrize(
    ("binding", "answers", "active", "response_url"),
    [(None, None, False, None), (POST, None, True, IDP_SLO)],
    ids=["no-slo", "post-only"],
)
def test_what_the_idp_metadata_says_decides(
    rt: Runtime,
    world: World,
    binding: str | None,
    answers: str | None,
    active: bool,
    response_url: str | None,
) -> None:
    """Without a SingleLogoutService single logout is off; an HTTP-POST one is
    kept, and answers go to its Location when it names no ResponseLocation."""
    metadata = slo_metadata(session_keys().idp.cert_pem, binding=binding, response_location=answers)
    org = slo_org(rt, world, metadata=metadata)
    assert _single_logout(rt, org.connection_id).active is active
    with rt.db.transaction() as db:
        config = connections.saml_config(rt, db.get_one(SsoConnection, org.connection_id))
    assert (config.idp_slo.response_url if config.idp_slo else None) == response_url


# -- IdP-initiated ----------------------------------------------------------------------


def test_an_idp_logout_ends_the_named_persons_sessions_and_no_one_elses(
    rt: Runtime, acme: SsoOrg
) -> None:
    ada, ada_again, bob = (
        signed_in(rt, acme, ADA),
        signed_in(rt, acme, ADA),
        signed_in(rt, acme, BOB),
    )
    query = logout_query(rt, acme, message_id="_idp-1", name_id=ADA, relay_state="back/to=idp")
    answered = to_slo(ada, acme, query)
    assert answered.status_code == 303, answered.text
    assert signed_out(ada) and signed_out(ada_again) and not signed_out(bob)
    sent = sent_to_idp(rt, acme, answered.headers["location"])
    assert (sent.url, sent.parameter, sent.relay_state) == (
        IDP_SLO_ANSWERS,
        "SAMLResponse",
        "back/to=idp",
    )
    assert sent.root.get("InResponseTo") == "_idp-1"
    assert sent.root.get("Destination") == IDP_SLO_ANSWERS
    assert (
        sent.root.findtext("saml:Issuer", namespaces=NS)
        == f"http://testserver/sso/saml/{acme.connection_id}/metadata"
    )
    assert _status(sent.root) == (SUCCESS, None)
    (event,) = _events(rt, "sso.logout")
    assert event.reason == "saml_idp_logout" and '"sessions_ended": 2' in (event.data or "")


def test_a_session_index_ends_that_session_only(rt: Runtime, acme: SsoOrg) -> None:
    first, second = signed_in(rt, acme, ADA), signed_in(rt, acme, ADA)
    index = idp_sessions(rt, acme, ADA)[0]
    answered = to_slo(first, acme, logout_query(rt, acme, name_id=ADA, session_indexes=(index,)))
    assert answered.status_code == 303
    assert signed_out(first) and not signed_out(second)
    assert _status(sent_to_idp(rt, acme, answered.headers["location"]).root) == (SUCCESS, None)


def test_nothing_matched_is_answered_partial_logout(rt: Runtime, acme: SsoOrg) -> None:
    """Core §3.7.3.2: the second-level PartialLogout under Success."""
    ada = signed_in(rt, acme, ADA)
    for claims in (
        {"name_id": "carol@acme.example"},
        {"name_id": ADA, "session_indexes": ("_gone",)},
    ):
        answered = to_slo(ada, acme, logout_query(rt, acme, **claims))
        assert answered.status_code == 303
        assert _status(sent_to_idp(rt, acme, answered.headers["location"]).root) == (
            SUCCESS, PARTIAL_LOGOUT,
        )  # fmt: skip
    assert not signed_out(ada)


def test_an_idp_logout_by_http_post(rt: Runtime, acme: SsoOrg) -> None:
    ada, bob = signed_in(rt, acme, ADA), signed_in(rt, acme, BOB)
    answered = post_message(bob, acme, rt, message_id="_posted", name_id=ADA)
    assert answered.status_code == 303, answered.text
    assert signed_out(ada) and not signed_out(bob)
    sent = sent_to_idp(rt, acme, answered.headers["location"])
    assert sent.root.get("InResponseTo") == "_posted" and sent.relay_state is None


def test_an_idp_logout_works_from_a_browser_without_a_session(rt: Runtime, acme: SsoOrg) -> None:
    """The IdP's front channel may pass through any browser of the person's."""
    ada = signed_in(rt, acme, ADA)
    stranger = signed_in(rt, acme, BOB)
    stranger.cookies.clear()
    assert to_slo(stranger, acme, logout_query(rt, acme, name_id=ADA)).status_code == 303
    assert signed_out(ada)


# -- SP-initiated -----------------------------------------------------------------------


def _sign_out(rt: Runtime, client: Any) -> Any:
    out = client.post("/logout", data={"csrf_token": csrf_token(client)}, follow_redirects=False)
    assert out.status_code == 303
    return out


def test_sign_out_goes_on_to_the_idp_and_reads_its_answer(rt: Runtime, acme: SsoOrg) -> None:
    ada, bob = signed_in(rt, acme, ADA), signed_in(rt, acme, BOB)
    index = idp_sessions(rt, acme, ADA)[0]
    out = _sign_out(rt, ada)
    assert signed_out(ada) and not signed_out(bob)  # at once, before the IdP answers
    assert count(rt, WebSession) == 1 and count(rt, SsoAuthentication) == 1
    sent = sent_to_idp(rt, acme, out.headers["location"])
    assert (sent.url, sent.parameter) == (IDP_SLO, "SAMLRequest")
    name_id = sent.root.find("saml:NameID", NS)
    assert (name_id.text, name_id.get("Format")) == (ADA, EMAIL)
    assert [s.text for s in sent.root.findall("samlp:SessionIndex", NS)] == [index]
    assert sent.root.get("Destination") == IDP_SLO
    request_id = sent.root.get("ID")
    answer = logout_query(rt, acme, response=True, in_response_to=request_id)
    page = to_slo(ada, acme, answer, accept="text/html")
    assert page.status_code == 200, page.text
    assert "You are signed out of hubgate, and of" in page.text
    assert [e.reason for e in _events(rt, "sso.logout_requested")] == ["sign_out"]
    assert [e.reason for e in _events(rt, "sso.logout_answered")] == ["Success"]
    again = to_slo(ada, acme, answer)
    assert (again.status_code, again.json()["error"]) == (400, "saml_logout_not_pending")


@pytest.mark.parametrize(
    ("claims", "shown"),
    [
        ({"status": "urn:oasis:names:tc:SAML:2.0:status:Responder"}, "it answered Responder"),
        ({"second_status": PARTIAL_LOGOUT}, "PartialLogout"),
    ],
    ids=["responder", "partial"],
)
def test_an_idp_that_did_not_sign_out_is_said_so(
    rt: Runtime, acme: SsoOrg, claims: dict[str, str], shown: str
) -> None:
    ada = signed_in(rt, acme, ADA)
    request_id = sent_to_idp(rt, acme, _sign_out(rt, ada).headers["location"]).root.get("ID")
    answer = logout_query(rt, acme, response=True, in_response_to=request_id, **claims)
    page = to_slo(ada, acme, answer, accept="text/html")
    assert page.status_code == 200
    assert "did not confirm that it signed you out" in page.text and shown in page.text


def test_sign_out_stays_here_when_single_logout_is_off(rt: Runtime, acme: SsoOrg) -> None:
    with rt.db.transaction() as db:
        row = db.get_one(SsoConnection, acme.connection_id)
        connections.update_settings(
            db, Actor.system(), operator_principal(), row, {"single_logout": False}
        )
    ada = signed_in(rt, acme, ADA)
    assert _sign_out(rt, ada).headers["location"] == "/signed-out"
    assert signed_out(ada) and _events(rt, "sso.logout_requested") == []


def test_an_org_admin_turns_single_logout_off_through_the_api(rt: Runtime, world: World) -> None:
    org = sso_org(rt, world, metadata=slo_metadata(session_keys().idp.cert_pem))
    client = TestClient(create_app(runtime=rt))
    sign_in(client, "admin@acme.example")
    path = f"/api/v1/orgs/acme/sso/connections/{org.connection_id}"
    changed = client.patch(path, json={"single_logout": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["single_logout"] is False
    assert _single_logout(rt, org.connection_id).active is False
    assert client.patch(path, json={"single_logout": "maybe"}).status_code in (400, 422)


# -- an IdP that takes HTTP-POST only -----------------------------------------------------


@pytest.fixture
def posting(rt: Runtime, world: World) -> SsoOrg:
    """globex, whose IdP's SingleLogoutService takes HTTP-POST only."""
    metadata = slo_metadata(session_keys().idp.cert_pem, binding=POST, response_location=None)
    return slo_org(rt, world, "globex", "globex.example", metadata=metadata)


def test_an_http_post_idp_gets_its_answer_by_a_form(rt: Runtime, posting: SsoOrg) -> None:
    ada = signed_in(rt, posting, "ada@globex.example")
    query = logout_query(
        rt, posting, message_id="_p1", name_id="ada@globex.example", relay_state="s"
    )
    page = to_slo(ada, posting, query, accept="text/html")
    action, root, fields = posted_to_idp(rt, posting, page)
    assert (action, fields["RelayState"]) == (IDP_SLO, "s")
    assert root.tag == f"{{{NS['samlp']}}}LogoutResponse" and root.get("InResponseTo") == "_p1"
    assert _status(root) == (SUCCESS, None) and signed_out(ada)


def test_sign_out_reaches_an_http_post_idp_through_a_form(rt: Runtime, posting: SsoOrg) -> None:
    ada = signed_in(rt, posting, "ada@globex.example")
    out = _sign_out(rt, ada)
    assert out.headers["location"].startswith(
        f"http://testserver/sso/saml/{posting.connection_id}/slo?send="
    )
    assert signed_out(ada)
    stranger = TestClient(create_app(runtime=rt))
    refused = stranger.get(out.headers["location"], headers={"accept": "application/json"})
    assert (refused.status_code, refused.json()["error"]) == (400, "saml_logout_not_pending")
    action, root, fields = posted_to_idp(rt, posting, ada.get(out.headers["location"]))
    assert action == IDP_SLO and list(fields) == ["SAMLRequest"]
    assert root.findtext("saml:NameID", namespaces=NS) == "ada@globex.example"
    answer = build_logout_response(logout_claims(rt, posting, in_response_to=root.get("ID")))
    value = post_value(answer, session_keys().idp)
    page = post_to_slo(ada, posting, "SAMLResponse", value, "text/html")
    assert page.status_code == 200 and "You are signed out of hubgate, and of" in page.text
