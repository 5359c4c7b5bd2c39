"""Nested or oversized JSON from outside gets a 4xx, never a 500 (hubgate.bounded_json):
the API's bodies, SCIM bodies, and every document an OIDC provider sends (discovery,
token and userinfo answers, key set, id_token), whose refusal is audited."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, ScimUser, SsoConnection
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.flows import oidc as oidc_flow
from tests.conftest import World, sign_in
from tests.integration.sso_world import count, sso_org
from tests.integration.test_oidc_flow import (
    CLIENT,
    ISSUER,
    SECRET,
    Provider,
    _callback,
    _start,
    answer_fetches,
    install,
    on_loop,
)
from tests.integration.test_scim import ERROR, MEDIA, Scim, scim_for, user_body

DEEP = b"[" * 10_000 + b"]" * 10_000
JUST_TOO_DEEP = b'{"a":' * 33 + b"1" + b"}" * 33


# -- the JSON API --------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP, JUST_TOO_DEEP], ids=["10000-deep", "33-deep"])
@pytest.mark.parametrize("media", ["application/json", "application/merge-patch+json"])
def test_a_nested_api_body_is_refused_before_it_is_parsed(
    client: TestClient, world: World, body: bytes, media: str
) -> None:
    world.user("ada@acme.test")
    answer = client.post("/api/v1/login", content=body, headers={"content-type": media})
    assert answer.status_code == 400
    assert answer.json()["error"] == "json_too_deep"


def test_brackets_in_a_string_are_not_nesting(client: TestClient, world: World) -> None:
    world.user("ada@acme.test")
    body = {"email": "ada@acme.test", "password": "[{" * 40}
    answer = client.post("/api/v1/login", json=body)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_credentials")
    sign_in(client, "ada@acme.test")


def test_an_oversized_api_body_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/login", content=b"[" + b"0," * 600_000 + b"0]",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large")


# -- SCIM ------------------------------------------------------------------------------


@pytest.fixture
def scim(rt: Runtime, client: TestClient, world: World) -> Scim:
    sso_org(rt, world)
    return scim_for(rt, client, "acme")


def _raw(scim: Scim, method: str, path: str, body: bytes, secret: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {secret or scim.secret}", "content-type": MEDIA}
    return scim.client.request(method, f"/scim/v2/acme{path}", content=body, headers=headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/Users"), ("POST", "/Groups"), ("POST", "/.search"), ("PATCH", "/Users/x"),
     ("PUT", "/Groups/x"), ("POST", "/Users/.search")],
)  # fmt: skip
@pytest.mark.parametrize("body", [DEEP, JUST_TOO_DEEP], ids=["10000-deep", "33-deep"])
def test_a_nested_scim_body_gets_a_scim_error(
    scim: Scim, rt: Runtime, method: str, path: str, body: bytes
) -> None:
    answer = _raw(scim, method, path, body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith(MEDIA)
    error = answer.json()
    assert error["schemas"] == [ERROR] and error["scimType"] == "invalidSyntax"
    assert "nests deeper than 32" in error["detail"]
    assert count(rt, ScimUser) == 0


def test_a_nested_scim_body_without_the_token_is_still_a_401(scim: Scim) -> None:
    assert _raw(scim, "POST", "/Users", DEEP, secret="wrong").status_code == 401


def test_a_normal_scim_body_with_brackets_in_its_strings_still_works(scim: Scim) -> None:
    user = user_body("ada@acme.example", externalId="00u1", displayName="[[[{{{" * 15)
    answer = _raw(scim, "POST", "/Users", json.dumps(user).encode())
    assert answer.status_code == 201, answer.text
    assert answer.json()["displayName"] == "[[[{{{" * 15


def test_an_oversized_scim_body_gets_a_scim_413(scim: Scim) -> None:
    answer = _raw(scim, "POST", "/Users", b"[" + b"0," * 600_000 + b"0]")
    assert answer.status_code == 413 and answer.json()["schemas"] == [ERROR]


# -- an OIDC provider's documents -------------------------------------------------------


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return install(monkeypatch)


@pytest.fixture
def connection(world: World, rt: Runtime, idp: Provider) -> int:
    org = world.org("acme", world.user("admin@acme.test"))
    provider = connections.discover(rt, ISSUER)
    with rt.db.transaction() as db:
        return connections.create_oidc(
            db, rt, Actor.system(), operator_principal(), db.merge(org),
            issuer=ISSUER, client_id=CLIENT, client_secret=SECRET, provider=provider,
        ).id  # fmt: skip


def _answering(monkeypatch: pytest.MonkeyPatch, idp: Provider, suffix: str, body: bytes) -> None:
    """The provider answers ``body`` at the endpoint ending in ``suffix``."""

    def fetch(url: str, **options: Any) -> bytes:
        return body if url.endswith(suffix) else idp.fetch(url, **options)

    answer_fetches(monkeypatch, fetch)


def _refused(client: TestClient, rt: Runtime, connection: int, idp: Provider) -> str:
    """Signs in; the callback's refusal (never a 500), checked against the audit log."""
    answer = _callback(client, connection, idp.authorize(_start(client)))
    assert answer["status"] == 400, answer
    with rt.db.transaction() as db:
        statement = select(AuditEvent.reason).where(AuditEvent.action == "sso.login_refused")
        assert db.scalars(statement).all() == [answer["error"]]
    return str(answer["error"])


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("body", [DEEP, JUST_TOO_DEEP], ids=["10000-deep", "33-deep"])
def test_a_nested_token_answer_is_an_audited_refusal(
    client: TestClient, rt: Runtime, idp: Provider, connection: int,
    monkeypatch: pytest.MonkeyPatch, body: bytes,
) -> None:  # fmt: skip
    monkeypatch.setattr(oidc_flow, "post_form_on_loop", on_loop(lambda url, form, **_: body))
    assert _refused(client, rt, connection, idp) == "oidc_token_exchange_failed"


@pytest.mark.parametrize("body", [DEEP, JUST_TOO_DEEP], ids=["10000-deep", "33-deep"])
def test_a_nested_userinfo_answer_is_an_audited_refusal(
    client: TestClient, rt: Runtime, idp: Provider, connection: int,
    monkeypatch: pytest.MonkeyPatch, body: bytes,
) -> None:  # fmt: skip
    idp.claims = {}
    _answering(monkeypatch, idp, "/userinfo", body)
    assert _refused(client, rt, connection, idp) == "oidc_userinfo_mismatch"


@pytest.mark.parametrize(
    "body", [DEEP, b'{"keys": ' + JUST_TOO_DEEP + b"}"], ids=["10000-deep", "33-deep"]
)
def test_a_nested_key_set_is_an_audited_refusal(
    client: TestClient, rt: Runtime, idp: Provider, connection: int,
    monkeypatch: pytest.MonkeyPatch, body: bytes,
) -> None:  # fmt: skip
    _answering(monkeypatch, idp, "/jwks", body)
    assert _refused(client, rt, connection, idp) == "oidc_key_not_found"


def test_an_id_token_with_a_nested_header_is_an_audited_refusal(
    client: TestClient, rt: Runtime, idp: Provider, connection: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    header = _segment(b'{"alg":"RS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}")
    token = f"{header}.{_segment(b'{}')}.c2ln"
    answer = json.dumps({"id_token": token, "access_token": "at"}).encode()
    monkeypatch.setattr(oidc_flow, "post_form_on_loop", on_loop(lambda url, form, **_: answer))
    assert _refused(client, rt, connection, idp) == "oidc_token_malformed"


@pytest.mark.parametrize("body", [DEEP, JUST_TOO_DEEP], ids=["10000-deep", "33-deep"])
def test_a_nested_discovery_document_is_refused_to_the_admin(
    client: TestClient, rt: Runtime, world: World, idp: Provider,
    monkeypatch: pytest.MonkeyPatch, body: bytes,
) -> None:  # fmt: skip
    world.org("acme", world.user("admin@acme.test"))
    sign_in(client, "admin@acme.test")
    _answering(monkeypatch, idp, "/.well-known/openid-configuration", body)
    create = {"kind": "oidc", "issuer": ISSUER, "client_id": CLIENT, "client_secret": SECRET}
    answer = client.post("/api/v1/orgs/acme/sso/connections", json=create)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "oidc_discovery_invalid"
    assert "nests deeper" in answer.json()["message"]
    assert count(rt, SsoConnection) == 0
