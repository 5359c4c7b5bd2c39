"""OIDC connections through the JSON API: created from the issuer's discovery,
settings changed under strict checks (every refusal changes nothing), the client
secret write-only, every change audited, and the connection's JWKS for
private_key_jwt. The provider is tests/integration/test_oidc_flow.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.db.models import AuditEvent, SsoConnection
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.test_oidc_flow import (
    CLIENT,
    ISSUER,
    SECRET,
    Provider,
    _callback,
    _start,
    install,
)
from tests.integration.test_saml_flow import idp_metadata
from tests.security.saml_forge import session_keys

BASE = "/api/v1/orgs/acme/sso/connections"
CREATE = {"kind": "oidc", "issuer": ISSUER, "client_id": CLIENT, "client_secret": SECRET}


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return install(monkeypatch)


@pytest.fixture
def admin(world: World, rt: Runtime) -> Iterator[TestClient]:
    """The admin of ``acme``, signed in (and a writer, ``writer@acme.test``)."""
    org = world.org("acme", world.user("admin@acme.test"))
    world.member(org, world.user("writer@acme.test"), OrgRole.WRITE)
    with TestClient(create_app(runtime=rt)) as client:
        sign_in(client, "admin@acme.test")
        yield client


@pytest.fixture
def created(admin: TestClient, idp: Provider) -> dict[str, Any]:
    response = admin.post(BASE, json=CREATE)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _stored(rt: Runtime, connection_id: int) -> tuple[str, int]:
    """The connection's settings column and the number of audit events."""
    with rt.db.transaction() as db:
        row = db.get(SsoConnection, connection_id)
        assert row is not None
        return row.settings, int(db.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def _last_event(rt: Runtime, action: str) -> dict[str, Any]:
    with rt.db.transaction() as db:
        statement = select(AuditEvent).where(AuditEvent.action == action)
        event = db.scalars(statement.order_by(AuditEvent.id.desc())).first()
        assert event is not None, action
        data: dict[str, Any] = json.loads(event.data)
        return data


def test_an_admin_creates_an_oidc_connection(
    admin: TestClient, rt: Runtime, created: dict[str, Any]
) -> None:
    connection_id = created["id"]
    assert created["kind"] == "oidc" and created["state"] == "draft"
    assert created["issuer"] == ISSUER and created["client_id"] == CLIENT
    assert created["token_auth"] == "client_secret_basic"
    assert created["redirect_uri"] == f"http://testserver/sso/oidc/{connection_id}/callback"
    assert created["jwks_uri"] == f"http://testserver/sso/oidc/{connection_id}/jwks"
    assert created["settings"] == {
        "scopes": ["openid", "email", "profile"], "algorithms": ["ES256", "PS256", "RS256"],
        "email_claim": "email", "email_verified_claim": "email_verified", "name_claim": "name",
        "groups_claim": "groups", "rp_logout": True,
    }  # fmt: skip
    base = f"http://testserver/sso/oidc/{connection_id}"
    assert created["logout"] == {
        "rp_logout_active": False,  # the test provider advertises no end_session_endpoint
        "backchannel_logout_uri": f"{base}/backchannel-logout",
        "post_logout_redirect_uri": f"{base}/logged-out",
    }
    listed = admin.get(BASE)
    assert SECRET not in listed.text and SECRET not in json.dumps(created)
    assert SECRET not in _stored(rt, connection_id)[0], "the secret is sealed at rest"
    event = _last_event(rt, "sso.connection_created")
    assert event == {"kind": "oidc", "issuer": ISSUER, "token_auth": "client_secret_basic"}


def test_only_an_admin_creates_or_changes_one(
    rt: Runtime, created: dict[str, Any], idp: Provider
) -> None:
    writer = TestClient(create_app(runtime=rt))
    sign_in(writer, "writer@acme.test")
    before = _stored(rt, created["id"])
    assert writer.post(BASE, json=CREATE).status_code == 403
    changed = writer.patch(f"{BASE}/{created['id']}", json={"scopes": ["openid"]})
    assert changed.status_code == 403
    assert _stored(rt, created["id"]) == before


def test_only_an_admin_makes_hubgate_fetch(rt: Runtime, created: dict[str, Any]) -> None:
    """Checked before any fetch: a writer's private URLs are refused as a writer's
    (403), never reached (they would answer 400 url_private)."""
    writer = TestClient(create_app(runtime=rt))
    sign_in(writer, "writer@acme.test")
    for body in (
        {"metadata_url": "http://127.0.0.1:5432/"},
        {**CREATE, "issuer": "http://127.0.0.1:5432"},
    ):
        refused = writer.post(BASE, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_role"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"issuer": "not a url"}, "invalid_setting"),
        ({"issuer": "ftp://idp.acme.example"}, "invalid_setting"),
        ({"issuer": "https://[::1"}, "invalid_setting"),
        ({"issuer": "https://idp.acme.example:99999"}, "invalid_setting"),
        ({"issuer": f"{ISSUER}?tenant=1"}, "invalid_setting"),
        ({"issuer": f"{ISSUER}#x"}, "invalid_setting"),
        ({"issuer": "https://idp.acme.example/" + "a" * 2048}, "invalid_request"),
        ({"issuer": "https://other.example"}, "oidc_issuer_mismatch"),
        ({"client_id": ""}, "invalid_request"),
        ({"client_id": "tab\tid"}, "invalid_setting"),
        ({"client_secret": ""}, "invalid_setting"),
        ({"client_secret": "x" * 1025}, "invalid_request"),
        ({"token_auth": "none"}, "invalid_request"),
        ({"kind": "ws-fed"}, "invalid_request"),
        ({"metadata_xml": "<x/>"}, "invalid_request"),
    ],
)
def test_a_refused_creation_creates_nothing(
    admin: TestClient, rt: Runtime, idp: Provider, body: dict[str, Any], code: str
) -> None:
    answered = admin.post(BASE, json={**CREATE, **body})
    assert answered.status_code == 400, answered.text
    assert answered.json()["error"] == code
    with rt.db.transaction() as db:
        assert db.scalar(select(func.count()).select_from(SsoConnection)) == 0


def test_private_issuers_are_refused_without_the_setting(admin: TestClient, rt: Runtime) -> None:
    """No fake provider here: hubgate's own fetch refuses loopback (SSRF)."""
    answered = admin.post(BASE, json={**CREATE, "issuer": "http://127.0.0.1:5432"})
    assert answered.status_code == 400 and answered.json()["error"] == "url_private"


def test_private_key_jwt_needs_no_secret(admin: TestClient, idp: Provider) -> None:
    body = {**CREATE, "client_secret": "", "token_auth": "private_key_jwt"}
    answered = admin.post(BASE, json=body)
    assert answered.status_code == 201, answered.text
    assert answered.json()["token_auth"] == "private_key_jwt"


def test_settings_change_the_next_sign_in(
    admin: TestClient, rt: Runtime, idp: Provider, created: dict[str, Any]
) -> None:
    """Scopes go into the authorization request; the claim names pick the claims."""
    connection_id = created["id"]
    change = {
        "scopes": ["openid", "email", "profile", "groups"], "groups_claim": "roles",
        "email_claim": "upn", "name_claim": "given_name", "email_verified_claim": "upn_ok",
    }  # fmt: skip
    answered = admin.patch(f"{BASE}/{connection_id}", json=change)
    assert answered.status_code == 200, answered.text
    assert answered.json()["settings"] == {**created["settings"], **change}
    assert _last_event(rt, "sso.settings_changed") == change
    idp.claims = {"upn": "ada@acme.example", "upn_ok": True, "given_name": "Ada",
                  "roles": ["ml-admins"], "groups": ["ignored"]}  # fmt: skip
    browser = TestClient(create_app(runtime=rt))
    location = _start(browser)
    assert parse_qs(urlsplit(location).query)["scope"] == ["openid email profile groups"]
    identity = _callback(browser, connection_id, idp.authorize(location))["identity"]
    assert identity["email"] == "ada@acme.example" and identity["email_verified"] is True
    assert identity["display_name"] == "Ada" and identity["groups"] == ["ml-admins"]


def test_algorithms_narrow_what_the_id_token_may_use(
    admin: TestClient, rt: Runtime, idp: Provider, created: dict[str, Any]
) -> None:
    answered = admin.patch(f"{BASE}/{created['id']}", json={"algorithms": ["ES384", "PS512"]})
    assert answered.json()["settings"]["algorithms"] == ["ES384", "PS512"]
    browser = TestClient(create_app(runtime=rt))
    refused = _callback(browser, created["id"], idp.authorize(_start(browser)))
    assert refused["error"] == "oidc_algorithm_refused", "the provider signs RS256"


TOO_LONG = "x" * 129


@pytest.mark.parametrize(
    "change",
    [
        {"algorithms": ["none"]},
        {"algorithms": ["HS256"]},
        {"algorithms": ["RS256", "HS512"]},
        {"algorithms": ["rs256"]},
        {"algorithms": []},
        {"algorithms": ["RS256"] * 10},
        {"scopes": ["email", "profile"]},
        {"scopes": []},
        {"scopes": ["openid", "email profile"]},
        {"scopes": ["openid", "tab\tscope"]},
        {"scopes": ["openid", 'quo"te']},
        {"scopes": ["openid", "openid"]},
        {"scopes": ["openid", ""]},
        {"scopes": ["openid", "s" * 65]},
        {"scopes": ["openid", *(f"s{n}" for n in range(16))]},
        {"scopes": "openid"},
        {"email_claim": ""},
        {"groups_claim": "my groups"},
        {"name_claim": TOO_LONG},
        {"email_verified_claim": ["email_verified"]},
        {"token_auth": "client_secret_jwt"},
        {"token_auth": "none"},
        {"client_id": ""},
        {"client_secret": ""},
        {"client_secret": "line\nbreak"},
        {"client_secret": "x" * 1025},
        {"client_secret": "nul\x00"},
        {"allow_idp_initiated": True},
        {"add_idp_certificate": "-----BEGIN CERTIFICATE-----"},
        {"scopes": ["openid"], "want_assertions_signed": False},
        {"scopes": ["openid", "groups"], "algorithms": ["none"]},
        {"unknown": 1},
    ],
)
def test_a_refused_change_changes_nothing(
    admin: TestClient, rt: Runtime, created: dict[str, Any], change: dict[str, Any]
) -> None:
    url = f"{BASE}/{created['id']}"
    before = _stored(rt, created["id"])
    answered = admin.patch(url, json=change)
    assert answered.status_code == 400, answered.text
    assert answered.json()["error"] in ("invalid_setting", "invalid_request")
    assert _stored(rt, created["id"]) == before, "no setting and no audit event"
    assert admin.get(BASE).json() == [created]


def test_the_client_secret_is_replaced_but_never_shown(
    admin: TestClient, rt: Runtime, idp: Provider, created: dict[str, Any]
) -> None:
    sealed_before = json.loads(_stored(rt, created["id"])[0])["client_secret"]
    answered = admin.patch(f"{BASE}/{created['id']}", json={"client_secret": "n3w+s3cret"})
    assert answered.status_code == 200 and "n3w" not in answered.text
    assert answered.json() == created
    stored = _stored(rt, created["id"])[0]
    assert "n3w" not in stored and json.loads(stored)["client_secret"] != sealed_before
    assert _last_event(rt, "sso.settings_changed") == {"client_secret": "replaced"}
    browser = TestClient(create_app(runtime=rt))
    _callback(browser, created["id"], idp.authorize(_start(browser)))
    assert idp.token_requests[-1][1] == (CLIENT, "n3w%2Bs3cret"), "basic, form-urlencoded"


def test_token_auth_needs_a_secret_to_leave_private_key_jwt(
    admin: TestClient, rt: Runtime, idp: Provider
) -> None:
    body = {**CREATE, "client_secret": "", "token_auth": "private_key_jwt"}
    connection_id = admin.post(BASE, json=body).json()["id"]
    before = _stored(rt, connection_id)
    refused = admin.patch(f"{BASE}/{connection_id}", json={"token_auth": "client_secret_post"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_setting"
    assert _stored(rt, connection_id) == before
    change = {"token_auth": "client_secret_post", "client_secret": "s"}
    assert admin.patch(f"{BASE}/{connection_id}", json=change).status_code == 200
    assert _last_event(rt, "sso.settings_changed") == {
        "token_auth": "client_secret_post", "client_secret": "replaced",
    }  # fmt: skip


def test_the_jwks_publishes_the_key_that_signs_the_client_assertion(
    admin: TestClient, rt: Runtime, idp: Provider, created: dict[str, Any]
) -> None:
    """private_key_jwt (RFC 7523): the assertion's kid names the published key,
    which verifies it; rotating the key changes the kid."""
    url = f"{BASE}/{created['id']}"
    admin.patch(url, json={"token_auth": "private_key_jwt"})
    published = admin.get(f"/sso/oidc/{created['id']}/jwks")
    assert published.status_code == 200
    assert published.headers["content-type"].startswith("application/jwk-set+json")
    (key,) = published.json()["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert key["kid"] and not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    browser = TestClient(create_app(runtime=rt))
    assert _callback(browser, created["id"], idp.authorize(_start(browser)))["status"] == 200
    form, auth = idp.token_requests[-1]
    assert auth is None and "client_secret" not in form
    assertion = jwt.decode(form["client_assertion"], KeySet.import_key_set(published.json()))
    assert assertion.header["kid"] == key["kid"]
    assert assertion.claims["iss"] == assertion.claims["sub"] == CLIENT
    assert assertion.claims["aud"] == f"{ISSUER}/token"
    admin.post(f"{url}/rotate-sp-key")
    rotated = admin.get(f"/sso/oidc/{created['id']}/jwks").json()["keys"]
    assert [k["kid"] for k in rotated] != [key["kid"]]


def test_the_jwks_of_no_oidc_connection_is_not_found(admin: TestClient) -> None:
    xml = idp_metadata(session_keys().idp.cert_pem).decode()
    saml = admin.post(BASE, json={"metadata_xml": xml}).json()["id"]
    for path in (f"/sso/oidc/{saml}/jwks", "/sso/oidc/404/jwks"):
        assert admin.get(path).status_code == 404, path
    for path in ("/sso/oidc/0/jwks", "/sso/oidc/99999999999/jwks", "/sso/oidc/x/jwks"):
        assert admin.get(path).status_code == 400, path
