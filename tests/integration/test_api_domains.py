"""An org's email domains over HTTP: ``/api/v1/orgs/{org}/domains``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dns.message
import dns.rcode
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.config import Settings
from hubgate.db.models import AuditEvent, OrgDomain, SsoConnection
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import domains
from tests.conftest import World, make_settings, sign_in

BASE = "/api/v1/orgs/acme/domains"
Login = Callable[[str], TestClient]


@pytest.fixture
def servfail_dns() -> Iterator[str]:
    """A real DNS server on loopback that answers every query with SERVFAIL."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = server.recvfrom(4096)
            except TimeoutError:
                continue
            reply = dns.message.make_response(dns.message.from_wire(wire))
            reply.set_rcode(dns.rcode.SERVFAIL)
            server.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def settings(database_url: str, servfail_dns: str) -> Settings:
    return make_settings(database_url, dns_resolver=servfail_dns)


@pytest.fixture
def acme(world: World) -> World:
    """acme: admin@ (admin), writer@ (write), reader@ (read); rival has its own
    admin; outsider@ belongs nowhere."""
    org = world.org("acme", world.user("admin@acme.test"))
    world.member(org, world.user("writer@acme.test"), OrgRole.WRITE)
    world.member(org, world.user("reader@acme.test"), OrgRole.READ)
    world.org("rival", world.user("admin@rival.test"))
    world.user("outsider@else.test")
    return world


@pytest.fixture
def login(rt: Runtime) -> Login:
    app = create_app(runtime=rt)

    def make(email: str) -> TestClient:
        client = TestClient(app)
        sign_in(client, email)
        return client

    return make


@pytest.fixture
def admin(login: Login, acme: World) -> TestClient:
    return login("admin@acme.test")


def state(rt: Runtime) -> tuple[list[tuple[int, str, str | None, int | None]], list[str]]:
    """Every domain row and every domain audit action: what a refusal must not change."""
    with rt.db.transaction() as db:
        rows = db.scalars(select(OrgDomain).order_by(OrgDomain.id))
        listed = [(r.org_id, r.domain, r.verified_by, r.connection_id) for r in rows]
        events = db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("domain.%"))
            .order_by(AuditEvent.id)
        )
        return listed, list(events)


def operator_verifies(rt: Runtime, org: str, domain: str) -> None:
    with rt.db.transaction() as db:
        domains.verify_by_operator(db, rt, Actor.system("test"), service.get_org(db, org), domain)


def test_admin_adds_lists_and_removes_a_domain(admin: TestClient) -> None:
    created = admin.post(BASE, json={"domain": "Bücher.Example."})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["domain"] == "xn--bcher-kva.example" and body["verified"] is False
    assert body["txt_record"]["name"] == "_hubgate.xn--bcher-kva.example"
    assert body["txt_record"]["value"].startswith("hubgate-verification=")
    again = admin.post(BASE, json={"domain": "xn--bcher-kva.example"})
    assert again.status_code == 201 and again.json() == body
    assert admin.get(BASE).json() == [body]
    assert admin.delete(f"{BASE}/bücher.example").status_code == 204
    assert admin.get(BASE).json() == []
    gone = admin.delete(f"{BASE}/bücher.example")
    assert gone.status_code == 404


def test_non_admins_are_refused_and_nothing_changes(
    login: Login, admin: TestClient, rt: Runtime, acme: World
) -> None:
    admin.post(BASE, json={"domain": "acme.test"})
    before = state(rt)
    anonymous = TestClient(create_app(runtime=rt))
    callers = [
        *(login(e) for e in ("writer@acme.test", "reader@acme.test", "outsider@else.test")),
        login("admin@rival.test"),
        anonymous,
    ]
    for caller in callers:
        for method, path, body in [
            ("GET", BASE, None),
            ("POST", BASE, {"domain": "new.test"}),
            ("POST", f"{BASE}/acme.test/verify", None),
            ("PUT", f"{BASE}/acme.test/connection", {"connection_id": None}),
            ("DELETE", f"{BASE}/acme.test", None),
        ]:
            response = caller.request(method, path, json=body)
            assert response.status_code in {401, 403, 404}, (method, path, response.text)
    assert state(rt) == before


def test_cookie_changes_need_the_csrf_token(admin: TestClient, rt: Runtime) -> None:
    admin.headers.pop("x-csrf-token")
    refused = admin.post(BASE, json={"domain": "acme.test"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    assert state(rt) == ([], [])


@pytest.mark.parametrize(
    "body",
    [
        {"domain": "bu\u0308cher.example"},
        {"domain": "localhost"},
        {"domain": "a..test"},
        {"domain": "me@acme.test"},
        {"domain": "acme.test\x00"},
        {"domain": "x" * 301},
        {"domain": ""},
        {"domain": 7},
        {"domain": "acme.test", "verified": True},
        {},
        [],
    ],
)
def test_bad_bodies_are_400_and_change_nothing(admin: TestClient, rt: Runtime, body: Any) -> None:
    response = admin.post(BASE, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_domain", "invalid_request"}
    assert state(rt) == ([], [])


@pytest.mark.parametrize("path", ["a..test", "x" * 400, "%00.test", "-a.test", "é" * 200])
def test_bad_domains_in_the_path_are_never_500(admin: TestClient, rt: Runtime, path: str) -> None:
    for method, suffix, body in [
        ("POST", "/verify", None),
        ("PUT", "/connection", {"connection_id": None}),
        ("DELETE", "", None),
    ]:
        response = admin.request(method, f"{BASE}/{path}{suffix}", json=body)
        assert response.status_code in {400, 404}, (method, response.text)
    assert state(rt) == ([], [])


def test_a_domain_verified_by_another_org_is_refused_without_naming_it(
    admin: TestClient, login: Login, rt: Runtime
) -> None:
    rival = login("admin@rival.test")
    assert (
        rival.post("/api/v1/orgs/rival/domains", json={"domain": "taken.test"}).status_code == 201
    )
    operator_verifies(rt, "rival", "taken.test")
    before = state(rt)
    refused = admin.post(BASE, json={"domain": "TAKEN.test."})
    assert refused.status_code == 409
    assert refused.json()["error"] == "domain_claimed"
    assert "rival" not in refused.text
    assert state(rt) == before


def test_dns_failure_is_a_clear_400_and_changes_nothing(admin: TestClient, rt: Runtime) -> None:
    """The configured resolver (a real one, on loopback) answers SERVFAIL."""
    admin.post(BASE, json={"domain": "acme.test"})
    before = state(rt)
    refused = admin.post(f"{BASE}/acme.test/verify")
    assert refused.status_code == 400
    assert refused.json()["error"] == "domain_unverified"
    assert "SERVFAIL" in refused.json()["message"]
    assert state(rt) == before
    assert admin.get(BASE).json()[0]["verified"] is False


def test_verify_of_an_operator_verified_domain_needs_no_dns(admin: TestClient, rt: Runtime) -> None:
    admin.post(BASE, json={"domain": "acme.test"})
    operator_verifies(rt, "acme", "acme.test")
    verified = admin.post(f"{BASE}/acme.test/verify")
    assert verified.status_code == 200
    assert verified.json()["verified"] is True and verified.json()["verified_by"] == "operator"


def test_a_connection_of_the_org_owns_a_domain(admin: TestClient, rt: Runtime, acme: World) -> None:
    admin.post(BASE, json={"domain": "acme.test"})
    with rt.db.transaction() as db:
        ours = SsoConnection(org_id=service.get_org(db, "acme").id, kind="saml", name="ours")
        theirs = SsoConnection(org_id=service.get_org(db, "rival").id, kind="oidc", name="x")
        db.add_all([ours, theirs])
        db.flush()
        ours_id, theirs_id = ours.id, theirs.id
    path = f"{BASE}/acme.test/connection"
    assigned = admin.put(path, json={"connection_id": ours_id})
    assert assigned.status_code == 200 and assigned.json()["connection_id"] == ours_id
    before = state(rt)
    for body in ({"connection_id": theirs_id}, {"connection_id": 0}, {}, {"connection_id": "x"}):
        assert admin.put(path, json=body).status_code in {400, 404}, body
    assert (
        admin.put(f"{BASE}/other.test/connection", json={"connection_id": None}).status_code == 404
    )
    assert state(rt) == before
    cleared = admin.put(path, json={"connection_id": None})
    assert cleared.status_code == 200 and cleared.json()["connection_id"] is None
