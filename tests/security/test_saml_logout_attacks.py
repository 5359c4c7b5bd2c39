"""Attacks on SAML Single Logout, through HTTP (SAML bindings §3.4-3.5, core §3.7).

A forged or stale logout message is a denial of service against everyone it
could name, and a forged answer would tell a person they are signed out of
their IdP when they are not. Each attack below is sent to hubgate's
SingleLogoutService while ada is signed in: none ends a session, each is
refused with its own reason code, audited as ``sso.logout_refused``, and none
is answered with a 500. Where the forgery is signed, the signature is a good
one by the key named, so the test shows the check refusing it, not the crypto.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, SsoConnection
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.saml.bindings import received_by_redirect, verify_query_signature
from tests.conftest import World
from tests.integration.slo_world import (
    csrf_token,
    logout_claims,
    logout_query,
    post_message,
    sent_to_idp,
    signed_in,
    signed_out,
    slo_metadata,
    slo_org,
    to_slo,
)
from tests.integration.sso_world import SsoOrg
from tests.security.saml_forge import build_logout_request, post_value, session_keys

ADA = "ada@acme.example"
GLOBEX_IDP = "https://idp.globex.example/saml"


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return slo_org(rt, world)


@pytest.fixture
def ada(rt: Runtime, acme: SsoOrg) -> TestClient:
    return signed_in(rt, acme, ADA)


def _refusals(rt: Runtime) -> list[str | None]:
    with rt.db.transaction() as db:
        found = db.scalars(select(AuditEvent).where(AuditEvent.action == "sso.logout_refused"))
        return [event.reason for event in found]


def _logouts(rt: Runtime) -> int:
    with rt.db.transaction() as db:
        return len(list(db.scalars(select(AuditEvent).where(AuditEvent.action == "sso.logout"))))


def _assert_refused(
    rt: Runtime, ada: TestClient, answered: Any, code: str, status: int = 400
) -> None:
    assert answered.status_code == status, answered.text
    assert answered.json()["error"] == code
    assert not signed_out(ada)
    assert _refusals(rt)[-1] == code and _logouts(rt) == 0


def _deflated(document: bytes) -> str:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(document) + deflater.flush()
    return quote(base64.b64encode(packed).decode(), safe="")


# -- each attack: what it sends, what refuses it ---------------------------------------

Attack = Callable[[Runtime, SsoOrg], str]
"""Builds the raw HTTP-Redirect query string of a forged message to acme."""

QUERY_ATTACKS: dict[str, tuple[Attack, str]] = {
    "unsigned": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA).split("&SigAlg=")[0],
        "saml_signature_missing",
    ),
    "signed-by-an-attackers-key": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, signer=session_keys().attacker),
        "saml_signature_invalid",
    ),
    "signed-by-another-orgs-idp": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, signer=session_keys().other_idp),
        "saml_signature_invalid",
    ),
    "sha1-sigalg": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, sig_alg="rsa-sha1"),
        "saml_signature_algorithm",
    ),
    "unknown-sigalg": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, sig_alg="urn:hubgate:none"),
        "saml_signature_algorithm",
    ),
    "expired-not-on-or-after": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, not_on_or_after=-timedelta(minutes=3)),
        "saml_logout_expired",
    ),
    "old-issue-instant": (
        lambda rt, acme: logout_query(
            rt,
            acme,
            name_id=ADA,
            issued=logout_claims(rt, acme).issued - timedelta(minutes=10),
            not_on_or_after=timedelta(minutes=15),
        ),  # fmt: skip
        "saml_issue_instant",
    ),
    "wrong-destination": (
        lambda rt, acme: logout_query(
            rt, acme, name_id=ADA, destination="http://testserver/sso/saml/999/slo"
        ),
        "saml_destination_mismatch",
    ),
    "wrong-issuer": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, issuer=GLOBEX_IDP),
        "saml_issuer_mismatch",
    ),
    "re-encoded-parameters": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA, relay_state="to/idp").replace(
            "to%2Fidp", "to%2fidp"
        ),
        "saml_signature_invalid",
    ),
    "response-in-the-request-parameter": (
        lambda rt, acme: logout_query(rt, acme, response=True, in_response_to="_x").replace(
            "SAMLResponse=", "SAMLRequest=", 1
        ),
        "saml_structure",
    ),
    "deflate-bomb": (
        lambda rt, acme: "SAMLRequest=" + _deflated(b"<a>" + b" " * (16 * 1024 * 1024)),
        "saml_inflated_too_large",
    ),
    "dtd": (
        lambda rt, acme: "SAMLRequest=" + _deflated(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'),
        "saml_dtd_forbidden",
    ),
    "deeply-nested": (
        lambda rt, acme: "SAMLRequest=" + _deflated(b"<a>" * 200 + b"</a>" * 200),
        "saml_malformed",
    ),
    "both-messages": (
        lambda rt, acme: logout_query(rt, acme, name_id=ADA) + "&SAMLResponse=AAAA",
        "saml_binding",
    ),
}


@pytest.mark.parametrize("attack", QUERY_ATTACKS, ids=list(QUERY_ATTACKS))
def test_a_forged_logout_request_by_redirect_is_refused(
    rt: Runtime, acme: SsoOrg, ada: TestClient, attack: str
) -> None:
    make, code = QUERY_ATTACKS[attack]
    answered = to_slo(ada, acme, make(rt, acme))
    _assert_refused(rt, ada, answered, code, 413 if code.endswith("too_large") else 400)


def test_a_refusal_is_a_page_for_a_browser(rt: Runtime, acme: SsoOrg, ada: TestClient) -> None:
    query = logout_query(rt, acme, name_id=ADA, signer=session_keys().attacker)
    page = to_slo(ada, acme, query, accept="text/html")
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "saml_signature_invalid" in page.text and page.headers["x-trace-id"] in page.text
    assert not signed_out(ada)


def test_a_replayed_logout_request_is_refused(rt: Runtime, acme: SsoOrg) -> None:
    """The browser's history (or an attacker who saw the URL) sends the IdP's
    LogoutRequest again, after ada signed in anew."""
    query = logout_query(rt, acme, name_id=ADA)
    first = signed_in(rt, acme, ADA)
    assert to_slo(first, acme, query).status_code == 303 and signed_out(first)
    again = signed_in(rt, acme, ADA)
    answered = to_slo(again, acme, query)
    assert answered.status_code == 400 and answered.json()["error"] == "saml_logout_replayed"
    assert not signed_out(again) and _refusals(rt) == ["saml_logout_replayed"]


@pytest.mark.parametrize(
    ("options", "code", "status"),
    [
        ({"unsigned": True}, "saml_signature_missing", 400),
        ({"signer": session_keys().attacker}, "saml_signature_invalid", 400),
        ({"name_id": "x" * 2000}, "saml_name_id", 400),
        ({"issuer": GLOBEX_IDP}, "saml_issuer_mismatch", 400),
    ],
    ids=["unsigned", "another-key", "oversized-nameid", "wrong-issuer"],
)
def test_a_forged_logout_request_by_post_is_refused(
    rt: Runtime, acme: SsoOrg, ada: TestClient, options: dict[str, Any], code: str, status: int
) -> None:
    answered = post_message(ada, acme, rt, **{"name_id": ADA, **options})
    _assert_refused(rt, ada, answered, code, status)


def test_an_oversized_post_is_refused(rt: Runtime, acme: SsoOrg, ada: TestClient) -> None:
    message = build_logout_request(logout_claims(rt, acme, name_id=ADA))
    etree.SubElement(message, "padding").text = "x" * (600 * 1024)
    answered = ada.post(
        f"/sso/saml/{acme.connection_id}/slo", data={"SAMLRequest": post_value(message, None)},
        headers={"accept": "application/json"},
    )  # fmt: skip
    _assert_refused(rt, ada, answered, "saml_too_large", 413)


def test_another_orgs_idp_cannot_sign_out_this_orgs_people(
    rt: Runtime, world: World, acme: SsoOrg, ada: TestClient
) -> None:
    """globex's IdP is real and its signature good: through globex's connection
    its LogoutRequest naming ada ends nothing (PartialLogout); through acme's it
    is refused."""
    other = session_keys().other_idp
    globex = slo_org(
        rt, world, "globex", "globex.example",
        metadata=slo_metadata(other.cert_pem, entity_id=GLOBEX_IDP),
    )  # fmt: skip
    through_globex = logout_query(rt, globex, name_id=ADA, signer=other, issuer=GLOBEX_IDP)
    answered = to_slo(ada, globex, through_globex)
    assert answered.status_code == 303 and not signed_out(ada)
    status = sent_to_idp(rt, globex, answered.headers["location"]).root[1][0]
    assert status[0].get("Value").endswith("PartialLogout")
    through_acme = logout_query(rt, acme, name_id=ADA, signer=other, issuer=GLOBEX_IDP)
    refused = to_slo(ada, acme, through_acme)
    assert (refused.status_code, refused.json()["error"]) == (400, "saml_signature_invalid")
    assert not signed_out(ada) and _refusals(rt) == ["saml_signature_invalid"]


def test_a_logout_request_to_a_connection_without_single_logout_is_refused(
    rt: Runtime, acme: SsoOrg, ada: TestClient
) -> None:
    with rt.db.transaction() as db:
        row = db.get_one(SsoConnection, acme.connection_id)
        connections.update_settings(
            db, Actor.system(), operator_principal(), row, {"single_logout": False}
        )
    answered = to_slo(ada, acme, logout_query(rt, acme, name_id=ADA))
    _assert_refused(rt, ada, answered, "saml_logout_off")


@pytest.mark.parametrize("path", ["/sso/saml/999/slo", "/sso/saml/0/slo", "/sso/saml/x/slo"])
def test_an_unknown_connection_is_refused(
    rt: Runtime, acme: SsoOrg, ada: TestClient, path: str
) -> None:
    query = logout_query(rt, acme, name_id=ADA)
    answered = ada.get(f"{path}?{query}", headers={"accept": "application/json"})
    assert answered.status_code in (400, 404, 422) and not signed_out(ada)


def test_an_overlong_query_string_is_refused(rt: Runtime, acme: SsoOrg, ada: TestClient) -> None:
    answered = to_slo(ada, acme, logout_query(rt, acme, name_id=ADA) + "&x=" + "a" * 40_000)
    _assert_refused(rt, ada, answered, "saml_too_large", 413)


# -- the IdP's answer to a sign-out -------------------------------------------------------


def _signed_out_at_hubgate(rt: Runtime, acme: SsoOrg, client: TestClient) -> str:
    """ada signs out; the ID of the LogoutRequest her browser carries to the IdP."""
    out = client.post("/logout", data={"csrf_token": csrf_token(client)}, follow_redirects=False)
    received = received_by_redirect(out.headers["location"].split("?", 1)[1])
    with rt.db.transaction() as db:
        verify_query_signature(
            received, (db.get_one(SsoConnection, acme.connection_id).sp_certificate,), rt.now()
        )
    request_id = etree.fromstring(received.document).get("ID")
    assert isinstance(request_id, str)
    return request_id


def test_an_answer_to_an_unknown_request_is_refused(
    rt: Runtime, acme: SsoOrg, ada: TestClient
) -> None:
    _signed_out_at_hubgate(rt, acme, ada)
    answer = logout_query(rt, acme, response=True, in_response_to="_never-sent")
    answered = to_slo(ada, acme, answer)
    assert answered.status_code == 400 and answered.json()["error"] == "saml_logout_not_pending"
    assert _refusals(rt) == ["saml_logout_not_pending"]


def test_an_answer_from_another_browser_is_refused_and_spends_nothing(
    rt: Runtime, acme: SsoOrg, ada: TestClient
) -> None:
    """mallory carries the IdP's answer to ada's request in her own browser: it is
    not hers; ada's browser still takes it after."""
    request_id = _signed_out_at_hubgate(rt, acme, ada)
    mallory = signed_in(rt, acme, "mallory@acme.example")
    answer = logout_query(rt, acme, response=True, in_response_to=request_id)
    refused = to_slo(mallory, acme, answer)
    assert refused.status_code == 400 and refused.json()["error"] == "saml_logout_not_pending"
    assert not signed_out(mallory)
    page = to_slo(ada, acme, answer, accept="text/html")
    assert page.status_code == 200 and "You are signed out of hubgate, and of" in page.text


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"signer": session_keys().attacker}, "saml_signature_invalid"),
        ({"issuer": GLOBEX_IDP}, "saml_issuer_mismatch"),
        ({"destination": "http://testserver/elsewhere"}, "saml_destination_mismatch"),
    ],
    ids=["another-key", "wrong-issuer", "wrong-destination"],
)
def test_a_forged_answer_is_refused_and_the_request_stays_pending(
    rt: Runtime, acme: SsoOrg, ada: TestClient, options: dict[str, Any], code: str
) -> None:
    request_id = _signed_out_at_hubgate(rt, acme, ada)
    forged = logout_query(rt, acme, response=True, in_response_to=request_id, **options)
    answered = to_slo(ada, acme, forged)
    assert answered.status_code == 400 and answered.json()["error"] == code
    assert _refusals(rt) == [code]
    real = logout_query(rt, acme, response=True, in_response_to=request_id)
    assert to_slo(ada, acme, real, accept="text/html").status_code == 200
