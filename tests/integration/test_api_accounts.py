"""Accounts over HTTP: sign-up, verification, sign-in, sessions, throttling."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hubgate.db.models import AuditEvent, OutboxMail, WebSession
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World, sign_in


def _count(rt: Runtime, model: type) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _verification_link(rt: Runtime, address: str) -> str:
    with rt.db.transaction() as db:
        body = db.scalars(
            select(OutboxMail.body)
            .where(OutboxMail.recipient == address)
            .order_by(OutboxMail.id.desc())
        ).first()
    assert body is not None
    match = re.search(r"token=([A-Za-z0-9_-]+)", body)
    assert match
    return match.group(1)


def test_sign_up_verify_and_sign_in(client: TestClient, rt: Runtime) -> None:
    created = client.post("/api/v1/signup", json={"email": "Bob@Example.COM", "password": PASSWORD})
    assert created.status_code == 201
    assert created.json()["emails"] == [
        {"address": "bob@example.com", "verified": False, "primary": True}
    ]
    token = _verification_link(rt, "bob@example.com")
    # The link verifies only in a session of the account that asked for it.
    signed_out = client.post("/api/v1/verify-email", json={"token": token})
    assert signed_out.status_code == 401
    sign_in(client, "bob@example.com")
    verified = client.post("/api/v1/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["verified"] is True
    again = client.post("/api/v1/verify-email", json={"token": token})
    assert again.status_code == 400 and again.json()["error"] == "link_invalid"
    me = client.get("/api/v1/me").json()
    assert me["emails"][0]["verified"] is True and me["credential"] == "session"


def test_duplicate_sign_up_is_409_and_changes_nothing(
    client: TestClient, world: World, rt: Runtime
) -> None:
    world.user("ann@example.com")
    before = _count(rt, OutboxMail)
    response = client.post(
        "/api/v1/signup", json={"email": "ANN@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409 and response.json()["error"] == "email_taken"
    assert _count(rt, OutboxMail) == before


def test_bad_inputs_are_400(client: TestClient) -> None:
    weak = client.post("/api/v1/signup", json={"email": "x@example.com", "password": "short"})
    assert weak.status_code == 400 and weak.json()["error"] == "weak_password"
    for bad in ["a@b@example.com", '"quoted"@example.com', "no-at-sign", "x@-bad-.com"]:
        response = client.post("/api/v1/signup", json={"email": bad, "password": PASSWORD})
        assert response.status_code == 400, bad
        assert response.json()["error"] in {"invalid_email", "invalid_request"}
    extra = client.post(
        "/api/v1/signup", json={"email": "x@example.com", "password": PASSWORD, "role": "admin"}
    )
    assert extra.status_code == 400


def test_session_rotates_at_sign_in_and_logout_ends_it(
    client: TestClient, world: World, rt: Runtime
) -> None:
    world.user("carol@example.com")
    sign_in(client, "carol@example.com")
    first = client.cookies.get("hubgate_session")
    sign_in(client, "carol@example.com")
    second = client.cookies.get("hubgate_session")
    assert first and second and first != second
    assert _count(rt, WebSession) == 1
    assert client.post("/api/v1/logout").status_code == 204
    assert _count(rt, WebSession) == 0
    client.cookies.set("hubgate_session", second)
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_password_is_refused_and_audited(
    client: TestClient, world: World, rt: Runtime
) -> None:
    world.user("dave@example.com")
    response = client.post(
        "/api/v1/login", json={"email": "dave@example.com", "password": "wrong password!"}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_credentials"
    unknown = client.post(
        "/api/v1/login", json={"email": "nobody@example.com", "password": "wrong password!"}
    )
    assert unknown.status_code == 401 and unknown.json() | {"trace_id": ""} == response.json() | {
        "trace_id": ""
    }
    with rt.db.transaction() as db:
        refused = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.login_refused")
        ).all()
    assert {e.reason for e in refused} == {"invalid_credentials"}
    assert response.json()["trace_id"] in {e.trace_id for e in refused}
    assert _count(rt, WebSession) == 0


def test_throttling_per_account(client: TestClient, world: World, rt: Runtime) -> None:
    world.user("eve@example.com")
    limit = rt.settings.throttle_account_failures
    for _ in range(limit):
        client.post(
            "/api/v1/login", json={"email": "eve@example.com", "password": "wrong password!"}
        )
    blocked = client.post("/api/v1/login", json={"email": "eve@example.com", "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.json()["error"] == "too_many_attempts"
    assert int(blocked.headers["retry-after"]) > 0
    assert _count(rt, WebSession) == 0


def test_cookie_api_changes_need_csrf_header(client: TestClient, world: World) -> None:
    world.user("fay@example.com")
    sign_in(client, "fay@example.com")
    del client.headers["x-csrf-token"]
    response = client.post("/api/v1/me/emails", json={"email": "fay2@example.com"})
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"


def test_extra_email_and_oversized_body(client: TestClient, world: World) -> None:
    world.user("gus@example.com")
    sign_in(client, "gus@example.com")
    added = client.post("/api/v1/me/emails", json={"email": "gus@other.example"})
    assert added.status_code == 201 and added.json()["verified"] is False
    huge = client.post(
        "/api/v1/me/emails",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"
    assert len(client.get("/api/v1/me").json()["emails"]) == 2


def test_me_sets_the_cookie_its_csrf_token_is_bound_to(
    client: TestClient, world: World, rt: Runtime
) -> None:
    """A browser signed in without ever seeing a page (SSO alone) got a token its
    next write was refused with (403 csrf_failed)."""
    world.user("csrf-me@example.com")
    signed = client.post(
        "/api/v1/login", json={"email": "csrf-me@example.com", "password": PASSWORD}
    )
    assert signed.status_code == 200, signed.text
    client.cookies.delete("hubgate_csrf")
    me = client.get("/api/v1/me")
    assert "hubgate_csrf" in me.cookies
    written = client.post(
        "/api/v1/me/emails", json={"email": "second@example.com"},
        headers={"x-csrf-token": me.json()["csrf_token"]},
    )  # fmt: skip
    assert written.status_code == 201, written.text
