"""The security headers of every response (issue 20, web/security_headers.py):
each GET route of the app, its path filled from a seeded world and fetched as a
browser signed in as the org's admin; the API, static files, errors of every
kind, and forward-auth, which keeps its answers minimal.

The expectations are written here from the issue, not read from the module: a
page whose URL carries a secret (the setup portal, the join link and the other
SSO legs, email verification, password reset) sends no ``Referer``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.access import Principal, ResourceKind, Visibility
from hubgate.account_security import recovery
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import OutboxMail
from hubgate.orgs import resources, service
from hubgate.runtime import Runtime
from hubgate.sso import invitations, setup
from hubgate.web.pages.kit import PageRoute
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, sso_org

HTML = {"accept": "text/html"}
POLICY = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'"
DOCS_POLICY = "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
SECRET_PATHS = ("/setup/", "/sso/", "/verify-email", "/reset-password")
NOSNIFF = "nosniff"


def expect_headers(response: httpx.Response, *, secret: bool, policy: str = POLICY) -> None:
    where = f"{response.request.method} {response.request.url} ({response.status_code})"
    headers = response.headers
    assert headers.get_list("x-content-type-options") == [NOSNIFF], where
    assert headers.get_list("content-security-policy") == [policy], where
    referrer = "no-referrer" if secret else "strict-origin-when-cross-origin"
    assert headers.get_list("referrer-policy") == [referrer], where


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    """acme: a verified domain, an active SAML connection, a team with a private
    model, a setup link and a join link."""
    org = sso_org(rt, world)
    with rt.db.transaction() as db:
        row = db.merge(org.org)
        service.create_team(db, Actor.system(), Principal.operator(), row, "research", None)
        resources.create(
            db, Actor.system(), Principal.operator(), row, ResourceKind.MODEL, "llama",
            Visibility.PRIVATE, "research",
        )  # fmt: skip
    return org


def _setup_key(rt: Runtime, org: SsoOrg) -> str:
    with rt.db.transaction() as db:
        _row, key = setup.create(
            db, rt, Actor.system(), Principal.operator(), db.merge(org.org), "it@acme.example",
            setup.DEFAULT_TTL,
        )  # fmt: skip
    return key


def _join_key(rt: Runtime, org: SsoOrg) -> str:
    with rt.db.transaction() as db:
        return invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(org.org)
        )


def _reset_token(rt: Runtime, address: str) -> str:
    with rt.db.transaction() as db:
        assert recovery.request_reset(db, rt, Actor.system(), address) is None
    with rt.db.transaction() as db:
        body = db.scalars(select(OutboxMail.body).where(OutboxMail.recipient == address)).first()
    match = re.search(r"/reset-password\?token=([A-Za-z0-9_-]+)", body or "")
    assert match, body
    return match.group(1)


def get_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every route that answers GET, with its path template."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and "GET" in (context.methods or ()):
            assert context.path is not None
            yield context.path, route


def _filled(template: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no value for {{{name}}} in {template}: add one to the world"
        return quote(values[name], safe="")

    return re.sub(r"\{(\w+)\}", value, template)


def _url(template: str, values: dict[str, str], queries: dict[str, str]) -> str:
    if template.startswith("/sso/join/"):
        values = {**values, "key": values["join_key"]}
    path = _filled(template, values)
    return path + (f"?{queries[template]}" if template in queries else "")


def test_every_get_route_sends_the_headers_and_secret_pages_no_referrer(
    client: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    values = {
        "org": "acme", "key": _setup_key(rt, acme), "join_key": _join_key(rt, acme),
        "connection_id": str(acme.connection_id), "team": "research", "kinds": "models",
        "kind": "model", "name": "llama", "urn": "urn:ietf:params:scim:schemas:core:2.0:User",
        "scim_id": "0", "provider_id": "1", "token_id": "1",
    }  # fmt: skip
    queries = {
        "/reset-password": f"token={_reset_token(rt, 'admin@acme.example')}",
        "/verify-email": "token=from-the-mail",
        "/sso/{org}/start": "next=/acme",
        "/sso/oidc/{connection_id}/callback": "code=a-code&state=a-state",
        "/sso/platform/{provider_id}/callback": "code=a-code&state=a-state",
    }
    sign_in(client, "admin@acme.example")
    app = client.app
    assert isinstance(app, FastAPI)
    seen: list[str] = []
    for template, route in get_routes(app):
        if template == "/auth/check":
            continue  # test_forward_auth_answers_stay_minimal
        response = client.get(_url(template, values, queries), headers=HTML, follow_redirects=False)
        docs = template == "/api/v1/docs"
        expect_headers(
            response, secret=template.startswith(SECRET_PATHS),
            policy=DOCS_POLICY if docs else POLICY,
        )  # fmt: skip
        if isinstance(route, PageRoute) or docs:
            # The page itself, not a redirect or an error page, was checked.
            assert response.status_code == 200, (template, response.text[:300])
            assert response.headers["content-type"].startswith("text/html"), template
        seen.append(template)
    for page in ("/setup/{key}", "/setup/{key}/connections/{connection_id}", "/reset-password",
                 "/verify-email", "/sso/join/{key}", "/{org}/{kinds}/{name}", "/api/v1/me",
                 "/scim/v2/{org}/Users", "/healthz", "/metrics"):  # fmt: skip
        assert page in seen, page


def test_the_sign_in_page_a_verification_link_leads_to_sends_no_referrer(
    client: TestClient,
) -> None:
    """Signed out, the verification link sends the browser to /login with the
    link (and its token) in ``next``: that page carries the secret too."""
    sent = client.get("/verify-email?token=the-secret", headers=HTML, follow_redirects=False)
    assert sent.status_code == 303
    expect_headers(sent, secret=True)
    login = client.get(sent.headers["location"], headers=HTML)
    assert login.status_code == 200
    assert "the-secret" in str(login.url)
    expect_headers(login, secret=True)
    expect_headers(client.get("/login?next=/acme", headers=HTML), secret=False)
    expect_headers(client.get("/login?next=/", headers=HTML), secret=False)


def test_api_static_and_error_responses(client: TestClient) -> None:
    for path in ("/static/hubgate.css", "/static/hubgate.js", "/static/api-docs.js",
                 "/api/v1/docs/assets/swagger-ui.css", "/api/v1/openapi.json"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 200, path
        expect_headers(response, secret=False)
    expect_headers(client.get("/api/v1/me"), secret=False)  # 401, JSON
    expect_headers(client.get("/no/such/page/here", headers=HTML), secret=False)  # 404 page
    expect_headers(client.get("/static/nothing.css"), secret=False)  # 404 from the files
    expect_headers(client.put("/healthz"), secret=False)  # 405
    expect_headers(client.post("/api/v1/login", json={}), secret=False)  # 400
    too_big = client.post("/api/v1/login", content=b"x" * (2 * 1024 * 1024))
    assert too_big.status_code == 413  # answered by the body limit, before the app
    expect_headers(too_big, secret=False)
    expect_headers(client.get("/scim/v2/acme/Users"), secret=False)  # 401, SCIM document
    expect_headers(client.get("/setup/not-a-link", headers=HTML), secret=True)  # its 404 page
    expect_headers(client.get("/sso/join/not-a-link", headers=HTML), secret=True)


def test_a_server_error_sends_the_headers_too(rt: Runtime) -> None:
    """An unhandled exception is answered by the framework's outermost error
    middleware; the headers are added around it."""
    app = create_app(runtime=rt)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.router.routes.insert(0, APIRoute("/broken", broken))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken")
    assert response.status_code == 500
    expect_headers(response, secret=False)


def test_forward_auth_answers_stay_minimal(client: TestClient, acme: SsoOrg) -> None:
    """The proxy asks /auth/check before every request of a model server and reads
    its answer: nosniff only, no page policy."""
    acme.resource("open", Visibility.PUBLIC)
    answers = {"/acme/models/open": 200, "/acme/models/llama": 401, "/not-a-resource": 403}
    for uri, status in answers.items():
        response = client.get("/auth/check", headers={"x-original-uri": uri})
        assert response.status_code == status, uri
        assert response.headers.get_list("x-content-type-options") == [NOSNIFF]
        assert "content-security-policy" not in response.headers
        assert "referrer-policy" not in response.headers
