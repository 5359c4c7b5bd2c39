"""What every proxy in front of a model server must do with hubgate's forward-auth,
written once and run through each real proxy (tests/e2e/test_nginx.py,
tests/e2e/test_caddy.py).

A proxy's test module subclasses :class:`ForwardAuthContract` as ``Test<Proxy>``
and gives it a ``proxy_url`` fixture: the proxy running its file from deploy/,
in front of hubgate and the ``model_server`` echo. The org is seeded through the
services on the same database before the servers start; every request then goes
through the proxy only (except the sign-in that obtains a session cookie, which
is hubgate's own API).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from hubgate.access import CredentialKind, OrgRole, Principal, ResourceKind, Visibility
from hubgate.accounts import sessions
from hubgate.audit import Actor
from hubgate.db.models import Org, User
from hubgate.orgs import resources, service, team_tokens
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World
from tests.e2e.conftest import EchoUpstream, bearer, personal_token, refusal

__all__ = [
    "CONFUSING_PATHS",
    "MEMBER",
    "SPOOFED",
    "ForwardAuthContract",
    "Secrets",
    "raw_get",
]

MEMBER = "member@acme.test"
# Sent with every request: identity a client must not be able to claim, and
# another (public) path and method a client must not be able to make hubgate check.
SPOOFED = {
    "X-Hubgate-User": "admin@acme.test",
    "X-Hubgate-Org": "evil",
    "X-Hubgate-Credential": "session",
    "X-Hubgate-Action": "admin",
    "X-Hubgate-Reason": "spoofed",
    "X-Hubgate-Assertion": "spoofed.assertion.jwt",
    "X_Hubgate_User": "admin@acme.test",  # WSGI servers read it as X-Hubgate-User
    "X-Original-URI": "/acme/models/open",
    "X-Original-Method": "GET",
    "X-Forwarded-Uri": "/acme/models/open",
    "X-Forwarded-Method": "GET",
}
# Paths the model server could read as another resource than hubgate checked.
CONFUSING_PATHS = [
    "/acme/models/open/../secret",
    "/acme/models/open/%2e%2e/secret",
    "/acme/models/open/x%2F..%2F..%2Fsecret",
    "/acme/models/open/.%2E;/secret",
    "/acme/models/open#/../secret",
    "/acme/models/open#x",
]


@dataclass(frozen=True)
class Secrets:
    """Credentials of the seeded world, as a client would hold them."""

    member_read: str
    member_write: str
    revoked: str
    outsider: str
    research: str
    research_subject: str


def _admin_principal(org: Org, admin: User) -> Principal:
    return Principal(
        credential=CredentialKind.SESSION, user_id=admin.id, org_id=org.id, org_role=OrgRole.ADMIN
    )


def _seed_org(rt: Runtime, org: Org, admin: User) -> tuple[str, int]:
    """Team ``research``, its private deployment, a private and a public model;
    returns the research team's inference token and its id."""
    actor, operator = Actor(label="admin", user_id=admin.id), _admin_principal(org, admin)
    with rt.db.transaction() as db:
        org = db.merge(org)
        team = service.create_team(db, actor, operator, org, "research", None)
        for kind, name, visibility, team_name in (
            (ResourceKind.MODEL, "secret", Visibility.PRIVATE, None),
            (ResourceKind.MODEL, "open", Visibility.PUBLIC, None),
            (ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE, "research"),
        ):
            resources.create(db, actor, operator, org, kind, name, visibility, team_name)
        new = team_tokens.create(
            db, actor, operator, org, team, "ci", ["inference"], None, rt.now()
        )
    return new.secret, new.row.id


def session_cookie(hubgate_url: str, email: str) -> str:
    """Sign in at hubgate itself; the ``Cookie`` header a browser would then send."""
    response = httpx.post(
        f"{hubgate_url}/api/v1/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return f"{sessions.COOKIE}={response.cookies[sessions.COOKIE]}"


def hubgate_headers(upstream: EchoUpstream) -> dict[str, list[str]]:
    """The X-Hubgate-* headers (any spelling) the model server saw on the last request."""
    headers = upstream.requests[-1].headers
    return {k: v for k, v in headers.items() if k.replace("_", "-").startswith("x-hubgate-")}


def raw_get(proxy_url: str, path: str) -> tuple[int, str | None]:
    """``GET path`` sent exactly as written (httpx would normalize it): the status
    and X-Hubgate-Reason of the answer."""
    url = httpx.URL(proxy_url)
    connection = http.client.HTTPConnection(url.host, url.port or 80, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("x-hubgate-reason")
    finally:
        connection.close()


# (method, path, credential, status, reason); all cases share one running stack.
REFUSALS = [
    ("GET", "/acme/models/secret", None, 401, "sign_in_required"),
    ("GET", "/acme/models/secret", "revoked", 401, "token_revoked"),
    ("GET", "/acme/models/secret", "bogus", 401, "token_invalid"),
    ("GET", "/acme/models/secret", "outsider", 403, "not_member"),
    ("POST", "/acme/deployments/chat/predict", "member_write", 403, "team_restricted"),
    ("POST", "/acme/deployments/chat/predict", "member_cookie", 403, "team_restricted"),
    ("POST", "/acme/deployments/chat/predict", "member_read", 403, "team_restricted"),
    ("GET", "/acme/models/secret", "research", 403, "team_restricted"),
    ("GET", "/acme/deployments/chat", "research", 403, "scope_insufficient"),
    ("GET", "/acme/models/missing", "member_read", 403, "not_found"),
    ("GET", "/v1/chat/completions", "member_read", 403, "route_unmapped"),
    ("GET", "/healthz", None, 403, "route_unmapped"),
]


class ForwardAuthContract:
    """The cases every proxy configuration in deploy/ must pass."""

    @pytest.fixture
    def creds(self, world: World) -> Secrets:
        """acme: an admin, a write member outside team research, and an outsider."""
        admin = world.user("admin@acme.test")
        member = world.user(MEMBER)
        outsider = world.user("outsider@other.test")
        acme = world.org("acme", admin)
        world.member(acme, member, OrgRole.WRITE)
        research, research_id = _seed_org(world.rt, acme, admin)
        return Secrets(
            member_read=personal_token(world.rt, member, "read"),
            member_write=personal_token(world.rt, member, "write"),
            revoked=personal_token(world.rt, member, "read", revoked=True),
            outsider=personal_token(world.rt, outsider, "read"),
            research=research,
            research_subject=f"token:{research_id}",
        )

    @pytest.fixture
    def proxy(self, creds: Secrets, proxy_url: str) -> Iterator[httpx.Client]:
        """A client of the proxy (seeded first, so the servers start on a ready database)."""
        with httpx.Client(base_url=proxy_url, timeout=10.0) as client:
            yield client

    # -- allowed ---------------------------------------------------------------

    def test_member_token_reaches_private_model_with_identity_from_hubgate(
        self, proxy: httpx.Client, creds: Secrets, model_server: EchoUpstream
    ) -> None:
        response = proxy.get("/acme/models/secret", headers=bearer(creds.member_read) | SPOOFED)

        assert response.status_code == 200
        assert response.json()["path"] == "/acme/models/secret"
        assert "x-hubgate-reason" not in response.headers
        assert "authorization" not in model_server.requests[-1].headers
        seen = hubgate_headers(model_server)
        assert seen["x-hubgate-org"] == ["acme"]
        assert seen["x-hubgate-credential"] == ["personal_token"]
        assert seen["x-hubgate-action"] == ["read"]
        assert "x-hubgate-reason" not in seen
        assert seen["x-hubgate-user"] == [MEMBER]

    def test_member_session_cookie_reaches_private_model(
        self, proxy: httpx.Client, hubgate_url: str, model_server: EchoUpstream
    ) -> None:
        cookie = session_cookie(hubgate_url, MEMBER)

        response = proxy.get("/acme/models/secret", headers={"Cookie": cookie} | SPOOFED)

        assert response.status_code == 200
        assert "cookie" not in model_server.requests[-1].headers
        seen = hubgate_headers(model_server)
        assert (seen["x-hubgate-user"], seen["x-hubgate-org"]) == ([MEMBER], ["acme"])
        assert seen["x-hubgate-credential"] == ["session"]

    def test_team_token_calls_its_team_deployment(
        self, proxy: httpx.Client, creds: Secrets, model_server: EchoUpstream
    ) -> None:
        response = proxy.post(
            "/acme/deployments/chat/predict", headers=bearer(creds.research) | SPOOFED,
            json={"inputs": "hi"},
        )  # fmt: skip

        assert response.status_code == 200
        assert response.json()["method"] == "POST"
        assert model_server.requests[-1].body_bytes == len(b'{"inputs":"hi"}')
        seen = hubgate_headers(model_server)
        assert seen["x-hubgate-org"] == ["acme"]
        assert seen["x-hubgate-credential"] == ["team_token"]
        assert seen["x-hubgate-action"] == ["call"]
        assert seen["x-hubgate-user"] == [creds.research_subject]

    def test_public_model_is_open_and_anonymous(
        self, proxy: httpx.Client, model_server: EchoUpstream
    ) -> None:
        """hubgate names no user for anonymous access, and neither the client's
        claimed one nor a proxy's stand-in may take its place."""
        response = proxy.get("/acme/models/open/resolve/main/config.json", headers=SPOOFED)

        assert response.status_code == 200
        assert hubgate_headers(model_server) == {
            "x-hubgate-org": ["acme"],
            "x-hubgate-credential": ["anonymous"],
            "x-hubgate-action": ["read"],
        }

    # -- refused ---------------------------------------------------------------

    def test_refusals_carry_hubgate_reason_and_never_reach_the_model_server(
        self, proxy: httpx.Client, creds: Secrets, hubgate_url: str, model_server: EchoUpstream
    ) -> None:
        credentials = {
            "bogus": bearer("hg_bogus"),
            "member_cookie": {"Cookie": session_cookie(hubgate_url, MEMBER)},
        }
        answers = []
        for method, path, credential, _status, _reason in REFUSALS:
            if credential and credential not in credentials:
                credentials[credential] = bearer(getattr(creds, credential))
            headers = credentials.get(credential or "", {}) | SPOOFED
            response = proxy.request(method, path, headers=headers, json={"inputs": "hi"})
            answers.append((method, path, credential, *refusal(response)))

        assert answers == REFUSALS
        assert model_server.requests == []

    def test_client_cannot_make_hubgate_check_another_path(
        self, proxy: httpx.Client, model_server: EchoUpstream
    ) -> None:
        """hubgate reads X-Original-URI before X-Forwarded-Uri: the proxy must set
        the one it sends and clear the other, or an anonymous client names a
        public model to hubgate while the proxy serves a private one."""
        public = {"X-Original-URI": "/acme/models/open", "X-Forwarded-Uri": "/acme/models/open"}

        response = proxy.get("/acme/models/secret", headers=public)

        assert refusal(response) == (401, "sign_in_required")
        assert model_server.requests == []
