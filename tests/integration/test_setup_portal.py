"""The setup portal from the outside: an IT admin without an account opens the
link, creates a SAML connection from pasted metadata, copies the SP values, runs a
test sign-in (signed by the test IdP), sees what arrived and what it would get,
and activates; expired, revoked and spent links get their own page."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import update

from hubgate.access import OrgRole, Principal
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, SetupLink, SsoConnection
from hubgate.runtime import Runtime
from hubgate.sso import connections, mappings, setup
from hubgate.sso.mappings import RoleRule
from tests.conftest import World, on_event_loop, sign_in
from tests.integration.test_saml_flow import IDP, idp_metadata
from tests.security.saml_forge import Claims, SamlForge, session_keys

HTML = {"accept": "text/html"}


@pytest.fixture
def acme(world: World) -> object:
    return world.org("acme", world.user("admin@acme.example"))


def _link(rt: Runtime, org: object, ttl: timedelta = setup.DEFAULT_TTL) -> str:
    with rt.db.transaction() as db:
        _row, key = setup.create(
            db, rt, Actor.system(), Principal.operator(), db.merge(org), "it@acme.example", ttl
        )
    return key


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _post(client: TestClient, page_path: str, path: str, data: dict[str, str]) -> object:
    token = _csrf(client.get(page_path, headers=HTML).text)
    return client.post(
        path, data={"csrf_token": token, **data}, headers=HTML, follow_redirects=False
    )


def _test_sign_in(client: TestClient, rt: Runtime, test_url: str, connection_id: int) -> str:
    """Follow the portal's test link to the IdP and post its signed answer back."""
    started = client.get(test_url, follow_redirects=False)
    query = parse_qs(urlsplit(started.headers["location"]).query)
    request_id = etree.fromstring(
        zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    ).get("ID")
    entity_id, acs = connections.sp_urls(rt, connection_id)
    forge = SamlForge(session_keys())
    claims = Claims(
        issued=datetime.now(UTC), response_issuer=IDP, assertion_issuer=IDP, destination=acs,
        recipient=acs, audiences=(entity_id,), in_response_to=request_id,
        confirmation_in_response_to=request_id, name_id="it@acme.example",
        email="it@acme.example", groups=("hub-admins", "staff"),
    )  # fmt: skip
    answer = client.post(
        f"/sso/saml/{connection_id}/acs", headers=HTML,
        data={"SAMLResponse": forge.response(claims), "RelayState": query["RelayState"][0]},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_it_admin_journey(client: TestClient, rt: Runtime, acme: object) -> None:
    with rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), _operator(acme), db.merge(acme),
            [RoleRule("groups", "hub-admins", OrgRole.ADMIN)],
        )  # fmt: skip
    key = _link(rt, acme)
    home = client.get(f"/setup/{key}", headers=HTML)
    assert home.status_code == 200 and "it@acme.example" in home.text
    created = _post(
        client, f"/setup/{key}", f"/setup/{key}/saml",
        {"metadata_xml": idp_metadata(session_keys().idp.cert_pem).decode()},
    )  # fmt: skip
    assert created.status_code == 303
    page_path = created.headers["location"]
    connection_id = int(page_path.rsplit("/", 1)[1])
    page = client.get(page_path, headers=HTML).text
    assert f"http://testserver/sso/saml/{connection_id}/acs" in page
    assert f"http://testserver/sso/saml/{connection_id}/slo" in page
    assert "Single logout is off: your identity provider's metadata names no" in page
    assert "Run a successful test sign-in first" in page
    test_url = re.search(r'href="(/sso/acme/start\?[^"]+)"', page).group(1).replace("&amp;", "&")
    identity_page = _test_sign_in(client, rt, test_url, connection_id)
    assert "it@acme.example" in identity_page and f"/setup/{key}/connections/" in identity_page
    page = client.get(page_path, headers=HTML).text
    assert "The last test sign-in worked" in page and "hub-admins" in page
    assert re.search(r"role <strong>admin</strong>", page)
    done = _post(client, page_path, f"{page_path}/activate", {})
    assert done.status_code == 200 and "is active" in done.text
    with rt.db.transaction() as db:
        assert db.get_one(SsoConnection, connection_id).state == "active"
        actors = {e.actor for e in db.query(AuditEvent).filter(AuditEvent.action.like("sso.%"))}
    assert "setup:it@acme.example" in actors
    spent = client.get(f"/setup/{key}", headers=HTML)
    assert spent.status_code == 404 and "used to activate a connection" in spent.text


def _operator(org: object):  # type: ignore[no-untyped-def]
    from hubgate.operator import operator_principal

    return operator_principal()  # type: ignore[arg-type]


def test_activation_needs_a_successful_test_sign_in(
    client: TestClient, rt: Runtime, acme: object
) -> None:
    key = _link(rt, acme)
    created = _post(
        client, f"/setup/{key}", f"/setup/{key}/saml",
        {"metadata_xml": idp_metadata(session_keys().idp.cert_pem).decode()},
    )  # fmt: skip
    refused = _post(
        client, created.headers["location"], f"{created.headers['location']}/activate", {}
    )
    assert refused.status_code == 409 and "test sign-in" in refused.text


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"metadata_xml": "<not-metadata/>"}, "metadata"),
        ({"metadata_url": "file:///etc/passwd"}, "http(s)"),
        ({}, "one of them"),
    ],
)
def test_bad_metadata_is_refused_on_the_page(
    client: TestClient, rt: Runtime, acme: object, metadata: dict[str, str], message: str
) -> None:
    key = _link(rt, acme)
    answer = _post(client, f"/setup/{key}", f"/setup/{key}/saml", metadata)
    assert answer.status_code == 400 and message in answer.text
    with rt.db.transaction() as db:
        assert db.query(SsoConnection).count() == 0


def test_a_saml_connection_is_made_off_the_event_loop(
    client: TestClient, rt: Runtime, acme: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload is read on the loop; its fetch or its transaction would stall the
    worker there."""
    create, seen = connections.create_saml, []

    def spy(*args: Any, **options: Any) -> Any:
        seen.append(on_event_loop())
        return create(*args, **options)

    monkeypatch.setattr(connections, "create_saml", spy)
    key = _link(rt, acme)
    metadata = idp_metadata(session_keys().idp.cert_pem).decode()
    answer = _post(client, f"/setup/{key}", f"/setup/{key}/saml", {"metadata_xml": metadata})
    assert answer.status_code == 303 and seen == [False]


def test_ended_links_say_why(client: TestClient, rt: Runtime, acme: object) -> None:
    expired, revoked = _link(rt, acme), _link(rt, acme)
    with rt.db.transaction() as db:
        db.execute(
            update(SetupLink)
            .where(SetupLink.key_hash == setup.store.digest(expired))
            .values(expires_at=rt.now() - timedelta(seconds=1))
        )
        row = db.query(SetupLink).filter(SetupLink.key_hash == setup.store.digest(revoked)).one()
        setup.revoke(db, rt, Actor.system(), Principal.operator(), db.merge(acme), row.id)
    assert "has expired" in client.get(f"/setup/{expired}", headers=HTML).text
    assert "was revoked" in client.get(f"/setup/{revoked}", headers=HTML).text
    unknown = client.get(f"/setup/{'x' * 43}", headers=HTML)
    assert unknown.status_code == 404 and "not valid" in unknown.text


def test_the_portal_reaches_only_its_own_org(
    client: TestClient, rt: Runtime, world: World, acme: object
) -> None:
    globex = world.org("globex", world.user("admin@globex.example"))
    with rt.db.transaction() as db:
        other = connections.create_saml(
            db, rt, Actor.system(), _operator(globex), db.merge(globex),
            idp_metadata(session_keys().idp.cert_pem),
        )  # fmt: skip
        other_id = other.id
    key = _link(rt, acme)
    assert client.get(f"/setup/{key}/connections/{other_id}", headers=HTML).status_code == 404
    answer = _post(client, f"/setup/{key}", f"/setup/{key}/connections/{other_id}/activate", {})
    assert answer.status_code == 404


def test_admins_issue_and_revoke_links_through_the_api(
    client: TestClient, rt: Runtime, acme: object
) -> None:
    sign_in(client, "admin@acme.example")
    made = client.post(
        "/api/v1/orgs/acme/sso/setup-links",
        json={"email": "it@acme.example", "expires_in_seconds": 3600},
    )
    assert made.status_code == 201
    url = made.json()["url"]
    assert client.get(url.removeprefix("http://testserver"), headers=HTML).status_code == 200
    assert [r["email"] for r in client.get("/api/v1/orgs/acme/sso/setup-links").json()] == [
        "it@acme.example"
    ]
    assert (
        client.delete(f"/api/v1/orgs/acme/sso/setup-links/{made.json()['id']}").status_code == 204
    )
    assert client.get(url.removeprefix("http://testserver"), headers=HTML).status_code == 404
    too_long = client.post(
        "/api/v1/orgs/acme/sso/setup-links",
        json={"email": "it@acme.example", "expires_in_seconds": 10**8},
    )
    assert too_long.status_code == 400


SAMPLES = Path(__file__).parents[1] / "unit" / "idp_metadata"


def test_the_portal_shows_the_chosen_idps_guide(
    client: TestClient, rt: Runtime, acme: object
) -> None:
    """Entra chosen on the overview: its steps before the connection exists, then,
    after its federation metadata is uploaded, its fields filled with this
    connection's values (each copyable) and the attribute names hubgate reads."""
    key = _link(rt, acme)
    home = client.get(f"/setup/{key}", params={"idp": "entra"}, headers=HTML)
    assert home.status_code == 200
    assert "Enterprise applications" in home.text and "App registrations" in home.text
    assert "shown once the connection exists" in home.text
    assert '<input type="hidden" name="idp" value="entra">' in home.text
    created = _post(
        client, f"/setup/{key}?idp=entra", f"/setup/{key}/saml",
        {"metadata_xml": (SAMPLES / "entra.xml").read_text(), "idp": "entra"},
    )  # fmt: skip
    assert created.status_code == 303
    page_path = created.headers["location"]
    assert page_path.endswith("?idp=entra")
    page = client.get(page_path, headers=HTML).text
    connection_id = int(urlsplit(page_path).path.rsplit("/", 1)[1])
    acs, slo = (f"http://testserver/sso/saml/{connection_id}/{p}" for p in ("acs", "slo"))
    assert re.search(
        rf'data-copy-label="Reply URL \(Assertion Consumer Service URL\)">{acs}<', page
    )
    assert re.search(rf'data-copy-label="Logout Url \(Optional\)">{slo}<', page)
    assert "Single logout is on" in page and "login.microsoftonline.com" in page
    assert "App registrations" not in page  # the SAML guide only
    assert "groups.link" in page  # the overage limit


def test_a_guides_names_hubgate_does_not_read_are_flagged(
    client: TestClient, rt: Runtime, acme: object
) -> None:
    key = _link(rt, acme)
    created = _post(
        client, f"/setup/{key}", f"/setup/{key}/saml",
        {"metadata_xml": (SAMPLES / "authentik.xml").read_text(), "idp": "authentik"},
    )  # fmt: skip
    page = client.get(created.headers["location"], headers=HTML).text
    rows = dict(re.findall(r"<td><code>([^<]+)</code></td><td>[^<]*</td><td>([^<]+)</td>", page))
    assert rows == {
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "reads it already",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": "enter this name in step 2",
        "http://schemas.xmlsoap.org/claims/Group": "enter this name in step 2",
    }


@pytest.mark.parametrize("idp", ["", "not-an-idp", "../okta"])
def test_no_or_an_unknown_idp_shows_the_chooser_only(
    client: TestClient, rt: Runtime, acme: object, idp: str
) -> None:
    key = _link(rt, acme)
    page = client.get(f"/setup/{key}", params={"idp": idp}, headers=HTML)
    assert page.status_code == 200 and 'name="idp"' in page.text
    assert 'class="idp-guide"' not in page.text and 'type="hidden" name="idp"' not in page.text
    created = _post(
        client, f"/setup/{key}", f"/setup/{key}/saml",
        {"metadata_xml": (SAMPLES / "google.xml").read_text(), "idp": idp},
    )  # fmt: skip
    assert "?" not in created.headers["location"]


def test_google_has_no_oidc_guide(client: TestClient, rt: Runtime, acme: object) -> None:
    key = _link(rt, acme)
    page = client.get(f"/setup/{key}", params={"idp": "google"}, headers=HTML).text
    assert "Add custom SAML app" in page and "use SAML" in page
    assert 'id="guide-google-oidc"' not in page


@pytest.mark.parametrize(
    ("idp", "entity_id", "slo"),
    [
        ("okta", "http://www.okta.com/exk9hubgate0test0x697", True),
        ("entra", "https://sts.windows.net/7f3c1e2a-0b4d-4c5e-9a8b-0c0ffee00001/", True),
        ("google", "https://accounts.google.com/o/saml2?idpid=C00hubgate", False),
        ("onelogin", "https://app.onelogin.com/saml/metadata/0f9a1c2e-hubg-4ate-test-000000000001", True),
        ("jumpcloud", "jumpcloud-hubgate", False),
        ("keycloak", "https://kc.acme.example/realms/acme", True),
        ("authentik", "authentik", True),
    ],
)  # fmt: skip
def test_each_idps_metadata_makes_a_connection(
    client: TestClient, rt: Runtime, acme: object, idp: str, entity_id: str, slo: bool
) -> None:
    """Uploaded as the file the IdP gives: stored with its entity id, and single
    logout on exactly when the IdP names a SingleLogoutService."""
    key = _link(rt, acme)
    token = _csrf(client.get(f"/setup/{key}", headers=HTML).text)
    created = client.post(
        f"/setup/{key}/saml", headers=HTML, follow_redirects=False,
        data={"csrf_token": token, "idp": idp},
        files={"metadata_file": (f"{idp}.xml", (SAMPLES / f"{idp}.xml").read_bytes())},
    )  # fmt: skip
    assert created.status_code == 303, created.text
    page = client.get(created.headers["location"], headers=HTML).text
    assert ("Single logout is on" in page) is slo
    assert f'id="guide-{idp}-saml"' in page
    with rt.db.transaction() as db:
        row = db.query(SsoConnection).one()
        assert connections.stored_settings(row)["idp_entity_id"] == entity_id
