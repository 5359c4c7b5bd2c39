"""The SAML sign-in flow over HTTP, in-process: metadata import, SP metadata,
SP-initiated redirect, ACS, replay and browser binding (the real-IdP flow is in
tests/e2e; the attack corpus in tests/security)."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import func, select

from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, Ephemeral, SsoConnection
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.saml.metadata import REDIRECT, certificate_body
from tests.conftest import World
from tests.security.saml_forge import Claims, SamlForge, session_keys

IDP = "https://idp.acme.example/saml"
SSO_URL = "https://idp.acme.example/sso"


def idp_metadata(cert_pem: str) -> bytes:
    md, ds = "urn:oasis:names:tc:SAML:2.0:metadata", "http://www.w3.org/2000/09/xmldsig#"
    entity = etree.Element(f"{{{md}}}EntityDescriptor", nsmap={"md": md, "ds": ds}, entityID=IDP)
    idp = etree.SubElement(entity, f"{{{md}}}IDPSSODescriptor")
    key = etree.SubElement(idp, f"{{{md}}}KeyDescriptor", use="signing")
    data = etree.SubElement(etree.SubElement(key, f"{{{ds}}}KeyInfo"), f"{{{ds}}}X509Data")
    etree.SubElement(data, f"{{{ds}}}X509Certificate").text = certificate_body(cert_pem)
    etree.SubElement(idp, f"{{{md}}}SingleSignOnService", Binding=REDIRECT, Location=SSO_URL)
    return etree.tostring(entity)


@pytest.fixture
def connection_id(world: World, rt: Runtime) -> int:
    org = world.org("acme", world.user("admin@acme.test"))
    with rt.db.transaction() as db:
        row = connections.create_saml(
            db, rt, Actor.system(), operator_principal(), db.merge(org),
            idp_metadata(session_keys().idp.cert_pem),
        )  # fmt: skip
        return row.id


def _start(client: TestClient, next_path: str = "/acme") -> tuple[str, str]:
    """Follow /sso/acme/start; the AuthnRequest's ID and the RelayState."""
    response = client.get("/sso/acme/start", params={"next": next_path}, follow_redirects=False)
    assert response.status_code == 303
    url = urlsplit(response.headers["location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == SSO_URL
    query = parse_qs(url.query)
    request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(request).get("ID"), query["RelayState"][0]


def _answer(rt: Runtime, connection: int, request_id: str | None, **changes: object) -> str:
    entity_id, acs = connections.sp_urls(rt, connection)
    claims = Claims(
        issued=datetime.now(UTC), response_issuer=IDP, assertion_issuer=IDP, destination=acs,
        recipient=acs, audiences=(entity_id,), in_response_to=request_id,
        confirmation_in_response_to=request_id,
    )  # fmt: skip
    forge = SamlForge(session_keys())
    return forge.response(forge.claims(**{**claims.__dict__, **changes}))


def _post(client: TestClient, connection: int, saml: str, relay: str) -> dict[str, object]:
    response = client.post(
        f"/sso/saml/{connection}/acs", data={"SAMLResponse": saml, "RelayState": relay},
        headers={"accept": "application/json"},
    )  # fmt: skip
    return {"status": response.status_code, **response.json()}


def _count(rt: Runtime, model: type, *where: object) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_sp_metadata(client: TestClient, connection_id: int) -> None:
    response = client.get(f"/sso/saml/{connection_id}/metadata")
    assert response.headers["content-type"].startswith("application/samlmetadata+xml")
    root = etree.fromstring(response.content)
    assert root.get("entityID") == f"http://testserver/sso/saml/{connection_id}/metadata"
    md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
    uses = [k.get("use") for k in root.iter(f"{md}KeyDescriptor")]
    assert uses == ["signing", "encryption"]
    acs = root.find(f"{md}SPSSODescriptor/{md}AssertionConsumerService")
    assert (
        acs is not None and acs.get("Location") == f"http://testserver/sso/saml/{connection_id}/acs"
    )
    assert client.get("/sso/saml/999/metadata").status_code == 404


def test_sp_initiated_sign_in_gives_the_identity(
    client: TestClient, rt: Runtime, connection_id: int
) -> None:
    request_id, relay = _start(client, "/acme/models/x")
    answer = _post(client, connection_id, _answer(rt, connection_id, request_id), relay)
    assert answer["status"] == 200
    identity = answer["identity"]
    assert isinstance(identity, dict)
    assert (
        identity["subject"] == "ada.lovelace@acme.example" and identity["email_verified"] is False
    )
    assert len(identity["groups"]) >= 10 and answer["next"] == "/acme/models/x"
    with rt.db.transaction() as db:
        assert db.get(SsoConnection, connection_id).state == "verified"  # type: ignore[union-attr]


def test_replay_is_refused_and_audited(client: TestClient, rt: Runtime, connection_id: int) -> None:
    request_id, relay = _start(client)
    saml = _answer(rt, connection_id, request_id)
    assert _post(client, connection_id, saml, relay)["status"] == 200
    _request_id2, relay2 = _start(client)
    again = _post(client, connection_id, saml, relay2)
    assert again["status"] == 400 and again["error"] == "saml_replayed"
    second_instance = TestClient(create_app(runtime=rt))
    second_instance.cookies.update(client.cookies)
    replayed = _post(second_instance, connection_id, saml, "")
    assert replayed["status"] == 400 and replayed["error"] == "saml_replayed"
    # The refused replay spent relay2: an answer to the first request needs a third.
    _request_id3, relay3 = _start(client)
    answers_the_first = _post(client, connection_id, _answer(rt, connection_id, request_id), relay3)
    assert answers_the_first["error"] == "saml_in_response_to"
    with rt.db.transaction() as db:
        refused = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "sso.login_refused")
        ).all()
    assert [e.reason for e in refused] == ["saml_replayed", "saml_replayed", "saml_in_response_to"]
    assert again["trace_id"] in {e.trace_id for e in refused}


def test_the_same_assertion_twice_is_replayed(
    client: TestClient, rt: Runtime, world: World
) -> None:
    org = world.org("acme", world.user("admin@acme.test"))
    with rt.db.transaction() as db:
        row = connections.create_saml(
            db, rt, Actor.system(), operator_principal(), db.merge(org),
            idp_metadata(session_keys().idp.cert_pem), allow_idp_initiated=True,
        )  # fmt: skip
        connection = row.id
    saml = _answer(rt, connection, None)
    assert _post(client, connection, saml, "")["status"] == 200
    other_browser = TestClient(create_app(runtime=rt))
    replay = _post(other_browser, connection, saml, "")
    assert replay["status"] == 400 and replay["error"] == "saml_replayed"


def test_a_response_posted_from_another_browser_is_refused(
    client: TestClient, rt: Runtime, connection_id: int
) -> None:
    request_id, relay = _start(client)
    requests = Ephemeral.purpose == "saml_request"
    pending = _count(rt, Ephemeral, requests)
    thief = TestClient(create_app(runtime=rt))
    stolen = _post(thief, connection_id, _answer(rt, connection_id, request_id), relay)
    # The RelayState names nothing this browser started: an answer to no request of its own.
    assert stolen["status"] == 400 and stolen["error"] == "saml_unsolicited"
    assert _count(rt, Ephemeral, requests) == pending, "the browser's own request is left"
    assert (
        _post(client, connection_id, _answer(rt, connection_id, request_id), relay)["status"] == 200
    )


@pytest.mark.parametrize(
    "next_path", ["//evil.example/x", "https://evil.example", "/\\evil.example"]
)
def test_hostile_next_lands_on_root(
    client: TestClient, rt: Runtime, connection_id: int, next_path: str
) -> None:
    request_id, relay = _start(client, next_path)
    answer = _post(client, connection_id, _answer(rt, connection_id, request_id), relay)
    assert answer["status"] == 200 and answer["next"] == "/"


def test_hostile_relay_state_and_garbage(
    client: TestClient, rt: Runtime, connection_id: int
) -> None:
    for relay in ["x" * 1000, "../../etc/passwd", "\u0000", ""]:
        answer = _post(client, connection_id, "bm90IHhtbA==", relay)
        assert answer["status"] == 400 and str(answer["error"]).startswith("saml_"), relay
    huge = client.post(f"/sso/saml/{connection_id}/acs", data={"SAMLResponse": "A" * 2_000_000})
    assert huge.status_code == 413


def test_connections_api(rt: Runtime, world: World) -> None:
    from hubgate.access import OrgRole
    from tests.conftest import sign_in

    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    world.member(org, world.user("writer@acme.test"), OrgRole.WRITE)
    client, writer = TestClient(create_app(runtime=rt)), TestClient(create_app(runtime=rt))
    sign_in(client, "admin@acme.test")
    sign_in(writer, "writer@acme.test")
    xml = idp_metadata(session_keys().idp.cert_pem).decode()
    denied = writer.post("/api/v1/orgs/acme/sso/connections", json={"metadata_xml": xml})
    assert denied.status_code == 403
    created = client.post("/api/v1/orgs/acme/sso/connections", json={"metadata_xml": xml})
    assert created.status_code == 201 and created.json()["state"] == "draft"
    body = created.json()
    assert body["idp_entity_id"] == IDP and len(body["idp_certificates_expire"]) == 1
    url = f"/api/v1/orgs/acme/sso/connections/{body['id']}"
    changed = client.patch(url, json={"allow_idp_initiated": True, "clock_skew_seconds": 30})
    assert changed.json()["settings"]["allow_idp_initiated"] is True
    rotated = client.post(f"{url}/rotate-sp-key").json()
    assert rotated["sp_certificate_expires"] != "" and rotated["id"] == body["id"]
    bad = client.post("/api/v1/orgs/acme/sso/connections", json={"metadata_xml": "<x/>"})
    assert bad.status_code == 400 and bad.json()["error"] == "saml_metadata_invalid"
    doctype = client.post(
        "/api/v1/orgs/acme/sso/connections",
        json={"metadata_xml": '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'},
    )
    assert doctype.status_code == 400
    ssrf = client.post(
        "/api/v1/orgs/acme/sso/connections", json={"metadata_url": "http://127.0.0.1:5432/"}
    )
    assert ssrf.status_code == 400 and ssrf.json()["error"] == "url_private"
    assert len(client.get("/api/v1/orgs/acme/sso/connections").json()) == 1


def test_refused_responses_change_no_rows(
    client: TestClient, rt: Runtime, connection_id: int
) -> None:
    """Attacks posted to the real ACS: each refused with its code, and no user,
    membership, session or connection state changes; each spends the pending
    request it answered (a refusal never leaves it usable)."""
    from hubgate.db.models import Membership, User, WebSession

    keys = session_keys()
    forge = SamlForge(keys)
    entity_id, acs = connections.sp_urls(rt, connection_id)
    good = {
        "issued": datetime.now(UTC), "response_issuer": IDP, "assertion_issuer": IDP,
        "destination": acs, "recipient": acs, "audiences": (entity_id,),
    }  # fmt: skip
    tables = (User, Membership, WebSession)
    before = [_count(rt, t) for t in tables]

    def attacks(request_id: str) -> dict[str, str]:
        return {
            "saml_signature_invalid": forge.response(
                forge.claims(
                    **good, in_response_to=request_id, confirmation_in_response_to=request_id
                ),
                signer=keys.attacker,
            ),
            "saml_audience_mismatch": forge.response(
                forge.claims(
                    **{**good, "audiences": ("https://other.example/sp",)},
                    in_response_to=request_id,
                    confirmation_in_response_to=request_id,
                )
            ),
            "saml_signature_missing": forge.response(
                forge.claims(
                    **good, in_response_to=request_id, confirmation_in_response_to=request_id
                ),
                sign_assertion=False,
            ),
            "saml_in_response_to": forge.response(
                forge.claims(
                    **good, in_response_to="_forged", confirmation_in_response_to="_forged"
                )
            ),
        }

    for code in attacks("_"):
        request_id, relay = _start(client)
        answer = _post(client, connection_id, attacks(request_id)[code], relay)
        assert (answer["status"], answer["error"]) == (400, code)
        assert _count(rt, Ephemeral, Ephemeral.purpose == "saml_request") == 0
    assert [_count(rt, t) for t in tables] == before
    with rt.db.transaction() as db:
        assert db.get(SsoConnection, connection_id).state == "draft"  # type: ignore[union-attr]


def test_the_sp_private_key_is_sealed_at_rest(rt: Runtime, connection_id: int) -> None:
    with rt.db.transaction() as db:
        row = db.get(SsoConnection, connection_id)
        assert row is not None
        assert "PRIVATE KEY" not in row.sp_private_key
        assert "PRIVATE KEY" in rt.sealer.unseal(row.sp_private_key)
        assert connections.saml_config(rt, row).sp_private_key.startswith("-----BEGIN PRIVATE KEY")


def test_no_such_or_inactive_connection_answers_404_and_records_nothing(
    client: TestClient, rt: Runtime, connection_id: int
) -> None:
    answer = _answer(rt, connection_id, None)
    seen_before = _count(rt, Ephemeral)
    assert _post(client, 999, answer, "")["status"] == 404
    with rt.db.transaction() as db:
        db.get_one(SsoConnection, connection_id).state = "inactive"
    refused = _post(client, connection_id, answer, "")
    assert refused["status"] == 404 and "SAML connection" in str(refused["message"])
    assert client.get(f"/sso/saml/{connection_id}/metadata").status_code == 404
    assert _count(rt, Ephemeral) == seen_before, "no assertion id was recorded"
    assert _count(rt, AuditEvent, AuditEvent.action == "sso.identity_verified") == 0
    with rt.db.transaction() as db:
        assert db.get_one(SsoConnection, connection_id).state == "inactive"
