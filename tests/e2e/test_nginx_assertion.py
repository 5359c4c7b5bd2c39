"""Signed identity through real nginx: hubgate (``HUBGATE_UPSTREAM_ASSERTION=true``)
behind deploy/nginx/hubgate.conf, in front of a model server that trusts nothing
but the assertion, verified with :mod:`hubgate.upstream` against hubgate's JWK Set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hubgate.access import CredentialKind, OrgRole, Principal, ResourceKind, Visibility
from hubgate.accounts import tokens
from hubgate.audit import Actor
from hubgate.orgs import resources
from hubgate.upstream import HEADER, AssertionMiddleware, AssertionVerifier, identity_of
from tests.conftest import World
from tests.e2e.conftest import HOST, STARTUP_SECONDS, running_nginx, running_server
from tests.ports import free_port

pytestmark = pytest.mark.e2e

MEMBER = "member@acme.test"
SERVED = ("acme/deployment/chat", "acme/model/open")


def _forged() -> str:
    """An assertion an attacker signed with a key of their own, claiming the admin."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    header = {"alg": "ES256", "kid": key.kid, "typ": "hubgate-assertion+jwt"}
    claims = {"sub": "admin@acme.test", "org": "acme", "act": "admin", "aud": SERVED[0]}
    return jwt.encode(header, claims, key, ["ES256"])


@pytest.fixture
def member_token(world: World) -> str:
    admin, member = world.user("admin@acme.test"), world.user(MEMBER)
    org = world.org("acme", admin)
    world.member(org, member, OrgRole.WRITE)
    owner = Principal(
        credential=CredentialKind.SESSION, user_id=admin.id, org_id=org.id, org_role=OrgRole.ADMIN
    )
    with world.rt.db.transaction() as db:
        for kind, name, visibility in [
            (ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE),
            (ResourceKind.MODEL, "open", Visibility.PUBLIC),
        ]:
            resources.create(
                db, Actor("e2e", admin.id), owner, db.merge(org), kind, name, visibility
            )
        return tokens.issue(db, user_id=member.id, name="w", scopes="write", expires_at=None).secret


@pytest.fixture
def signing_hubgate(database_url: str, member_token: str) -> Iterator[str]:
    with running_server(database_url, {"HUBGATE_UPSTREAM_ASSERTION": "true"}) as url:
        yield url


def _model_server(verifier: AssertionVerifier) -> Starlette:
    """The tests' model server: it echoes who hubgate says calls, and how many
    assertion headers reached it."""

    def echo(request: Request) -> JSONResponse:
        identity = identity_of(request)
        return JSONResponse({
            "sub": identity.subject, "act": identity.action, "res": identity.resource,
            "cred": identity.credential, "assertions": len(request.headers.getlist(HEADER)),
        })  # fmt: skip

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    app.add_middleware(AssertionMiddleware, verifier=verifier)
    return app


@pytest.fixture
def verifying_upstream(signing_hubgate: str) -> Iterator[str]:
    """The model server under uvicorn on a thread; yields its ``host:port``."""
    port = free_port()
    verifier = AssertionVerifier(signing_hubgate, SERVED)
    config = uvicorn.Config(_model_server(verifier), host=HOST, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="verifying-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for readiness under a ceiling, not a timed wait
    assert server.started, "the model server did not start"
    try:
        yield f"{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_SECONDS)
        verifier.close()


@pytest.fixture
def proxy(nginx: str, signing_hubgate: str, verifying_upstream: str) -> Iterator[httpx.Client]:
    with running_nginx(nginx, hubgate_url=signing_hubgate, upstream=verifying_upstream) as url:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            yield client


def test_the_model_server_verifies_who_calls_and_never_sees_a_forged_assertion(
    proxy: httpx.Client, member_token: str
) -> None:
    headers = {"Authorization": f"Bearer {member_token}", HEADER: _forged()}
    response = proxy.post("/acme/deployments/chat/predict", headers=headers, json={"x": 1})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": MEMBER, "act": "call", "res": "acme/deployment/chat", "cred": "personal_token",
        "assertions": 1,
    }  # fmt: skip


def test_an_anonymous_reader_is_vouched_for_as_anonymous(proxy: httpx.Client) -> None:
    response = proxy.get("/acme/models/open/config.json", headers={HEADER: _forged()})

    assert response.status_code == 200, response.text
    assert response.json()["sub"] is None
    assert response.json()["cred"] == "anonymous"


def test_going_around_nginx_with_a_forged_assertion_is_refused(
    verifying_upstream: str,
) -> None:
    response = httpx.post(
        f"http://{verifying_upstream}/acme/deployments/chat/predict", headers={HEADER: _forged()}
    )
    assert (response.status_code, response.json()["error"]) == (401, "key_unknown")
