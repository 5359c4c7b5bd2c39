"""``GET /auth/check`` in-process (the nginx end-to-end test drives it through a proxy)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hubgate.access import CredentialKind, OrgRole, ResourceKind, Visibility
from hubgate.accounts import tokens
from hubgate.audit import Actor
from hubgate.gate.asgi import Gate, GateRequest
from hubgate.orgs import resources, service
from hubgate.principals import Credential, principal_for
from hubgate.runtime import Runtime, build_runtime
from tests.conftest import World, make_settings, run_async, sign_in


def _check(
    client: TestClient, uri: str, method: str = "GET", **headers: str
) -> tuple[int, str | None]:
    response = client.get(
        "/auth/check", headers={"x-original-uri": uri, "x-original-method": method, **headers}
    )
    return response.status_code, response.headers.get("x-hubgate-reason")


@pytest.fixture
def seeded(world: World, rt: Runtime) -> dict[str, str]:
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    member = world.user("member@acme.test")
    world.member(org, member, OrgRole.WRITE)
    with rt.db.transaction() as db:
        principal = principal_for(
            db, Credential(kind=CredentialKind.SESSION, user_id=admin.id), org.id
        )
        actor = Actor("admin@acme.test", user_id=admin.id)
        for kind, name, visibility in [
            (ResourceKind.MODEL, "open", Visibility.PUBLIC),
            (ResourceKind.MODEL, "closed", Visibility.PRIVATE),
            (ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE),
        ]:
            resources.create(db, actor, principal, db.merge(org), kind, name, visibility)
        read = tokens.issue(db, user_id=member.id, name="r", scopes="read", expires_at=None)
        expired = tokens.issue(
            db,
            user_id=member.id,
            name="e",
            scopes="write",
            expires_at=rt.now() - timedelta(seconds=1),
        )
        assert service.membership(db, org.id, member.id) is not None
    return {"read": read.secret, "expired": expired.secret}


def test_answers(client: TestClient, seeded: dict[str, str]) -> None:
    bearer = {"authorization": f"Bearer {seeded['read']}"}
    assert _check(client, "/acme/models/open") == (200, None)
    assert _check(client, "/acme/models/closed") == (401, "sign_in_required")
    assert _check(client, "/acme/models/closed", **bearer) == (200, None)
    assert _check(client, "/acme/models/closed", "POST", **bearer) == (403, "scope_insufficient")
    assert _check(client, "/acme/deployments/chat/predict", "POST", **bearer) == (
        403,
        "scope_insufficient",
    )
    assert _check(client, "/acme/models/nothing", **bearer) == (403, "not_found")
    assert _check(client, "/acme/models/../closed", **bearer) == (403, "route_unmapped")
    expired = {"authorization": f"Bearer {seeded['expired']}"}
    assert _check(client, "/acme/models/closed", **expired) == (401, "token_expired")
    ok = client.get("/auth/check", headers={"x-forwarded-uri": "/acme/models/closed", **bearer})
    assert (
        ok.headers["x-hubgate-user"].startswith("member@acme.test")
        and ok.headers["x-hubgate-org"] == "acme"
    )


def test_session_cookie_and_idle_expiry(
    client: TestClient, seeded: dict[str, str], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached allow holds no longer than the session: once it has idled out, the
    next check refuses without any write in between."""
    sign_in(client, "member@acme.test")
    assert _check(client, "/acme/deployments/chat/predict", "POST") == (200, None)
    later = rt.now() + timedelta(seconds=rt.settings.session_idle_seconds + 1)
    monkeypatch.setattr(Runtime, "now", staticmethod(lambda: later))
    assert _check(client, "/acme/deployments/chat/predict", "POST") == (401, "sign_in_required")


@pytest.mark.parametrize(
    "headers",
    [
        {"x-original-uri": "/acme/models/closed", "x-forwarded-uri": "/acme/models/open"},
        {"x-original-uri": "/acme/models/open", "x-original-method": "GET",
         "x-forwarded-method": "DELETE"},
    ],
)  # fmt: skip
def test_two_differing_names_of_the_original_request_are_refused(
    client: TestClient, seeded: dict[str, str], headers: dict[str, str]
) -> None:
    """A proxy that passes the client's X-Original-* on (Caddy, Traefik) while
    sending its own X-Forwarded-*: hubgate cannot tell which one is the client's."""
    answer = client.get("/auth/check", headers=headers)
    assert (answer.status_code, answer.headers.get("x-hubgate-reason")) == (
        403,
        "route_ambiguous",
    )
    agreeing = {"x-original-uri": "/acme/models/open", "x-forwarded-uri": "/acme/models/open"}
    assert client.get("/auth/check", headers=agreeing).status_code == 200


def test_a_header_sent_twice_with_two_values_names_nothing(
    rt: Runtime, seeded: dict[str, str]
) -> None:
    """A proxy that adds its X-Original-URI after the client's own: hubgate does not
    pick one; two Authorization headers are no bearer token either. (An HTTP client
    joins repeated headers, so the gate is asked directly, as uvicorn hands it a
    request: one entry per header line.)"""
    gate = Gate(app=None, runtime=rt)  # type: ignore[arg-type]
    uri, closed = b"x-original-uri", b"/acme/models/closed"
    bearer = f"Bearer {seeded['read']}".encode()
    cases = {
        "route_ambiguous": [(uri, b"/acme/models/open"), (uri, closed)],
        "token_invalid": [(uri, closed), (b"authorization", bearer),
                          (b"authorization", b"Bearer hg_someone_else")],
        "allow": [(uri, closed), (uri, closed), (b"authorization", bearer)],
    }  # fmt: skip
    try:
        for reason, raw in cases.items():
            assert run_async(gate.answer(GateRequest(raw))).reason == reason
    finally:
        gate.close()


def test_a_database_that_cannot_answer_gives_503_not_500(tmp_path: Path) -> None:
    """The gate runs ahead of the framework's error handlers: it says so itself,
    and the proxy fails closed on a 503."""
    missing = tmp_path / "gone" / "hubgate.db"
    runtime = build_runtime(make_settings(f"sqlite:///{missing}"))
    gate = Gate(app=None, runtime=runtime)  # type: ignore[arg-type]
    raw = [(b"x-original-uri", b"/acme/models/open"), (b"authorization", b"Bearer hg_x")]
    try:
        answer = run_async(gate.answer(GateRequest(raw)))
    finally:
        gate.close()
        runtime.db.engine.dispose()
    assert (answer.status, answer.reason) == (503, "database_unavailable")
