"""The server-rendered pages, driven like a browser: forms with their CSRF token,
post/redirect/get, safe ``next`` redirects and access through the services."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hubgate import audit
from hubgate.access import OrgRole, Principal, ResourceKind, TeamRole, Visibility
from hubgate.accounts.users import VERIFY_PURPOSE
from hubgate.audit import Actor
from hubgate.db.models import (
    AuditEvent,
    Email,
    Ephemeral,
    Membership,
    Org,
    OutboxMail,
    Resource,
    Token,
    User,
    WebSession,
)
from hubgate.orgs import resources, service
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World, sign_in

HTML = {"accept": "text/html"}


def _count(rt: Runtime, model: type, *where: Any) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _csrf(client: TestClient, path: str = "/") -> str:
    page = client.get(path, headers=HTML)
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match, (path, page.status_code, page.text[:500])
    return match.group(1)


def _post(
    client: TestClient, path: str, data: dict[str, Any], csrf_from: str = "/"
) -> httpx.Response:
    form = {"csrf_token": _csrf(client, csrf_from), **data}
    return client.post(path, data=form, headers=HTML, follow_redirects=False)


def _log_in(client: TestClient, email: str, next_path: str = "/") -> httpx.Response:
    form = {"email": email, "password": PASSWORD, "next": next_path}
    response = _post(client, "/login", form, csrf_from="/login")
    assert response.status_code == 303, response.text
    return response


def _operator(org: Org) -> Principal:
    return Principal.operator()


@dataclass
class Acme:
    """``acme`` with an admin, a writer, a reader, and an outsider with no membership."""

    rt: Runtime
    org: Org
    admin: User
    writer: User
    reader: User
    outsider: User

    def resource(self, name: str, visibility: str, team: str | None = None) -> None:
        with self.rt.db.transaction() as db:
            resources.create(
                db, Actor.system(), _operator(self.org), db.merge(self.org), ResourceKind.MODEL,
                name, Visibility(visibility), team,
            )  # fmt: skip

    def team(self, name: str, *members: tuple[User, TeamRole]) -> None:
        with self.rt.db.transaction() as db:
            org = db.merge(self.org)
            team = service.create_team(db, Actor.system(), _operator(org), org, name, None)
            for user, role in members:
                service.set_team_member(
                    db, Actor.system(), _operator(org), org, team, db.merge(user), role
                )


@pytest.fixture
def acme(world: World, rt: Runtime) -> Acme:
    admin = world.user("admin@acme.example")
    org = world.org("acme", admin)
    writer, reader = world.user("writer@acme.example"), world.user("reader@acme.example")
    world.member(org, writer, OrgRole.WRITE)
    world.member(org, reader, OrgRole.READ)
    return Acme(rt, org, admin, writer, reader, world.user("outsider@example.com"))


def _verification_token(rt: Runtime, address: str) -> str:
    with rt.db.transaction() as db:
        body = db.scalars(select(OutboxMail.body).where(OutboxMail.recipient == address)).first()
    assert body is not None
    match = re.search(r"/verify-email\?token=([A-Za-z0-9_-]+)", body)
    assert match
    return match.group(1)


# -- accounts -----------------------------------------------------------------------


def test_sign_up_verify_sign_in_and_create_an_org(client: TestClient, rt: Runtime) -> None:
    form = {"email": "Nia@Example.com", "password": PASSWORD, "display_name": "Nia"}
    created = _post(client, "/signup", form, csrf_from="/signup")
    assert created.status_code == 303 and created.headers["location"] == "/signup/sent"
    assert "Check your mail" in client.get("/signup/sent").text

    token = _verification_token(rt, "nia@example.com")
    pending = Ephemeral.purpose == VERIFY_PURPOSE
    # Signed out, the link asks for its account's password first, and comes back.
    signed_out = client.get(f"/verify-email?token={token}", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/login?next=%2Fverify-email%3Ftoken%3D")
    comes_back = _log_in(client, "nia@example.com", f"/verify-email?token={token}")
    assert comes_back.headers["location"] == f"/verify-email?token={token}"
    for _ in range(2):  # mail scanners open links: a GET only shows the button
        page = client.get(f"/verify-email?token={token}")
        assert page.status_code == 200 and "Confirm my email" in page.text
    assert _count(rt, Ephemeral, pending) == 1
    confirmed = _post(client, "/verify-email", {"token": token}, csrf_from="/signup")
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/verify-email/done"
    assert _count(rt, Email, Email.verified_at.is_not(None)) == 1
    again = _post(client, "/verify-email", {"token": token}, csrf_from="/signup")
    assert again.status_code == 400 and "not valid" in again.text
    new_org = _post(client, "/orgs/new", {"name": "niaco", "display_name": "Nia & Co"})
    assert new_org.status_code == 303 and new_org.headers["location"] == "/niaco"
    org_page = client.get("/niaco")
    assert org_page.status_code == 200
    assert "Nia &amp; Co" in org_page.text and "New resource" in org_page.text
    home = client.get("/").text
    assert 'href="/niaco"' in home and "badge-admin" in home and "nia@example.com" in home


def test_sign_up_refusals_rerender_the_form(client: TestClient, world: World) -> None:
    world.user("taken@example.com")
    weak = _post(client, "/signup", {"email": "x@example.com", "password": "short"}, "/signup")
    assert weak.status_code == 400 and 'role="alert"' in weak.text
    taken = _post(
        client, "/signup", {"email": "taken@example.com", "password": PASSWORD}, "/signup"
    )
    assert taken.status_code == 409 and 'value="taken@example.com"' in taken.text


def test_wrong_password_rerenders_with_401_then_429(
    client: TestClient, world: World, rt: Runtime
) -> None:
    world.user("dan@example.com")
    wrong = {"email": "dan@example.com", "password": "not the password"}
    refused = _post(client, "/login", wrong, csrf_from="/login")
    assert refused.status_code == 401 and "Wrong email or password." in refused.text
    assert 'value="dan@example.com"' in refused.text
    for _ in range(rt.settings.throttle_account_failures):
        _post(client, "/login", wrong, csrf_from="/login")
    blocked = _post(client, "/login", wrong | {"password": PASSWORD}, csrf_from="/login")
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert _count(rt, WebSession) == 0


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_next_never_leaves_the_site(client: TestClient, world: World, target: str) -> None:
    world.user("ivy@example.com")
    assert _log_in(client, "ivy@example.com", target).headers["location"] == "/"


def test_next_keeps_a_local_path(client: TestClient, world: World) -> None:
    world.user("ivy@example.com")
    location = _log_in(client, "ivy@example.com", "/acme/models/x?tab=1").headers["location"]
    assert location == "/acme/models/x?tab=1"


def test_logout_ends_the_session(client: TestClient, world: World, rt: Runtime) -> None:
    world.user("lou@example.com")
    _log_in(client, "lou@example.com")
    assert "lou@example.com" in client.get("/").text
    out = _post(client, "/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/signed-out"
    assert _count(rt, WebSession) == 0
    assert "signed out of hubgate in this browser" in client.get("/signed-out").text
    assert "Sign in" in client.get("/").text


# -- CSRF -------------------------------------------------------------------------------


def test_posts_without_a_valid_csrf_token_are_refused(
    client: TestClient, world: World, rt: Runtime
) -> None:
    world.user("csrf@example.com")
    anonymous_token = _csrf(client, "/login")
    signup = {"email": "new@example.com", "password": PASSWORD}
    assert client.post("/signup", data=signup, headers=HTML).status_code == 403
    login = {"email": "csrf@example.com", "password": PASSWORD}
    assert client.post("/login", data=login, headers=HTML).status_code == 403
    assert _count(rt, User) == 1 and _count(rt, WebSession) == 0

    _log_in(client, "csrf@example.com")
    attempts = [{}, {"csrf_token": "0" * 64}, {"csrf_token": anonymous_token}]
    for extra in attempts:  # missing, wrong, and a token bound to the earlier session
        response = client.post("/orgs/new", data={"name": "sneaky", **extra}, headers=HTML)
        assert response.status_code == 403 and "csrf_failed" in response.text
    valid = _csrf(client)
    client.cookies.delete("hubgate_csrf")  # the token is bound to the browser's cookie too
    without_cookie = client.post("/orgs/new", data={"name": "sneaky", "csrf_token": valid})
    assert without_cookie.status_code == 403
    assert _count(rt, Org) == 0
    assert _post(client, "/orgs/new", {"name": "fine"}).status_code == 303


# -- org and resource pages ---------------------------------------------------------------


def test_org_page_shows_public_to_everyone_and_private_to_members(
    client: TestClient, acme: Acme
) -> None:
    acme.resource("open-model", "public")
    acme.resource("secret-model", "private")
    anonymous = client.get("/acme")
    assert "open-model" in anonymous.text and "secret-model" not in anonymous.text
    assert "New resource" not in anonymous.text and "Members" not in anonymous.text
    assert client.get("/acme/models/open-model").status_code == 200
    assert client.get("/acme/models/secret-model", headers=HTML).status_code == 404

    _log_in(client, "outsider@example.com")
    assert "secret-model" not in client.get("/acme").text
    _log_in(client, "reader@acme.example")
    page = client.get("/acme").text
    assert "secret-model" in page and "New resource" not in page
    _log_in(client, "writer@acme.example")
    assert "New resource" in client.get("/acme").text


def test_unknown_org_and_kind_are_404_pages(client: TestClient, acme: Acme) -> None:
    for path in ["/nope", "/acme/widgets/x", "/acme/models/missing"]:
        response = client.get(path, headers=HTML)
        assert response.status_code == 404 and "<h1" in response.text, path
        assert "trace id" in response.text


def test_team_resource_is_404_outside_the_team(client: TestClient, acme: Acme) -> None:
    acme.team("research", (acme.reader, TeamRole.READ))
    acme.resource("weights", "private", team="research")
    _log_in(client, "writer@acme.example")
    assert client.get("/acme/models/weights", headers=HTML).status_code == 404
    assert "weights" not in client.get("/acme").text
    _log_in(client, "reader@acme.example")
    assert client.get("/acme/models/weights").status_code == 200
    assert "weights" in client.get("/acme").text


def test_resource_form_settings_and_delete(client: TestClient, acme: Acme, rt: Runtime) -> None:
    _log_in(client, "admin@acme.example")
    form = {"kind": "model", "name": "llama", "visibility": "private", "description": "v1"}
    created = _post(client, "/acme/resources/new", form, "/acme")
    assert created.status_code == 303 and created.headers["location"] == "/acme/models/llama"
    taken = _post(client, "/acme/resources/new", form, "/acme")
    assert taken.status_code == 409 and 'value="llama"' in taken.text
    settings = {"edit_access": "true", "visibility": "public", "team": "",
                "edit_description": "true", "description": "v2"}  # fmt: skip
    assert _post(client, "/acme/models/llama/settings", settings, "/acme").status_code == 303
    with rt.db.transaction() as db:
        row = db.scalars(select(Resource).where(Resource.name == "llama")).one()
        assert (row.visibility, row.description) == ("public", "v2")

    _log_in(client, "writer@acme.example")
    page = client.get("/acme/models/llama").text
    assert "Save settings" in page and 'name="visibility"' not in page
    access = _post(client, "/acme/models/llama/settings", settings | {"visibility": "private"})
    assert access.status_code == 403
    text_only = {"edit_description": "true", "description": "v3"}
    assert _post(client, "/acme/models/llama/settings", text_only).status_code == 303
    assert _post(client, "/acme/models/llama/delete", {}).status_code == 403

    _log_in(client, "admin@acme.example")
    deleted = _post(client, "/acme/models/llama/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/acme"
    assert _count(rt, Resource) == 0


# -- members, teams, audit ------------------------------------------------------------------


def _roles(rt: Runtime) -> dict[int, str]:
    with rt.db.transaction() as db:
        return {m.user_id: m.role for m in db.scalars(select(Membership))}


def test_member_forms_are_for_admins_only(
    client: TestClient, acme: Acme, world: World, rt: Runtime
) -> None:
    newcomer = world.user("new@acme.example")
    before = _roles(rt)
    _log_in(client, "writer@acme.example")
    page = client.get("/acme/members")
    assert page.status_code == 200 and "reader@acme.example" in page.text
    assert "Add a member" not in page.text
    refused = [
        _post(client, "/acme/members/add", {"email": "new@acme.example", "role": "admin"}),
        _post(client, f"/acme/members/{acme.reader.id}/role", {"role": "admin"}),
        _post(client, f"/acme/members/{acme.reader.id}/remove", {}),
        # Nothing about accounts that do not exist: refused before any lookup.
        _post(client, "/acme/members/add", {"email": "ghost@acme.example", "role": "read"}),
        _post(client, "/acme/members/999999/role", {"role": "admin"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403, 403]
    assert _roles(rt) == before

    _log_in(client, "admin@acme.example")
    admin_page = client.get("/acme/members").text
    assert "Add a member" in admin_page and '<option value="contributor"' in admin_page
    added = _post(client, "/acme/members/add", {"email": "new@acme.example", "role": "read"})
    assert added.status_code == 303
    assert _post(client, f"/acme/members/{newcomer.id}/role", {"role": "write"}).status_code == 303
    assert _roles(rt)[newcomer.id] == "write"
    unknown = _post(client, "/acme/members/add", {"email": "ghost@acme.example"})
    assert unknown.status_code == 400 and "sign up first" in unknown.text
    last = _post(client, f"/acme/members/{acme.admin.id}/remove", {})
    assert last.status_code == 409 and "at least one active admin" in last.text


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, acme: Acme) -> None:
    for path in ["/settings/tokens", "/acme/members", "/acme/teams/everyone"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")
    audit_page = client.get("/acme/audit?action=x", follow_redirects=False)
    assert audit_page.headers["location"] == "/login?next=%2Facme%2Faudit%3Faction%3Dx"
    login = client.get(audit_page.headers["location"])
    assert 'name="next" value="/acme/audit?action=x"' in login.text


def test_team_token_secret_is_shown_once(client: TestClient, acme: Acme, rt: Runtime) -> None:
    _log_in(client, "admin@acme.example")
    team = _post(client, "/acme/teams/new", {"name": "research"}, "/acme/teams")
    assert team.status_code == 303 and team.headers["location"] == "/acme/teams/research"
    member = {"user_id": str(acme.writer.id), "role": "read"}
    assert _post(client, "/acme/teams/research/members", member).status_code == 303
    form = {"name": "ci", "scopes": ["inference", "read"], "expires_in_days": ""}
    created = _post(client, "/acme/teams/research/tokens", form)
    assert created.status_code == 200
    secret = re.search(r"hg_[A-Za-z0-9_-]{40,}", created.text)
    assert secret and "Copy your new token now" in created.text
    reloaded = client.get("/acme/teams/research").text
    assert secret.group(0) not in reloaded and secret.group(0)[:8] in reloaded
    bearer = client.get("/api/v1/me", headers={"authorization": f"Bearer {secret.group(0)}"})
    assert bearer.status_code == 401  # a team token is not a person

    assert '<option value="admin"' in reloaded
    _log_in(client, "writer@acme.example")
    page = client.get("/acme/teams/research").text
    assert "writer@acme.example" in page and "Team tokens" not in page
    assert _post(client, "/acme/teams/research/tokens", form).status_code == 403
    assert _count(rt, Token) == 1

    _log_in(client, "admin@acme.example")
    with rt.db.transaction() as db:
        token_id = db.scalars(select(Token.id)).one()
    revoked = _post(client, f"/acme/teams/research/tokens/{token_id}/revoke", {})
    assert revoked.status_code == 303
    assert _count(rt, Token, Token.revoked_at.is_not(None)) == 1


def test_personal_tokens_page(client: TestClient, world: World, rt: Runtime) -> None:
    world.user("pat@example.com")
    _log_in(client, "pat@example.com")
    none_chosen = _post(client, "/settings/tokens", {"name": "cli"})
    assert none_chosen.status_code == 400 and 'role="alert"' in none_chosen.text
    created = _post(client, "/settings/tokens", {"name": "cli", "scopes": "read"})
    secret = re.search(r"hg_[A-Za-z0-9_-]{40,}", created.text)
    assert created.status_code == 200 and secret
    assert created.headers["cache-control"] == "no-store"
    assert created.headers["x-frame-options"] == "DENY"
    assert secret.group(0) not in client.get("/settings/tokens").text
    me = client.get("/api/v1/me", headers={"authorization": f"Bearer {secret.group(0)}"})
    assert me.status_code == 200
    with rt.db.transaction() as db:
        token_id = db.scalars(select(Token.id)).one()
    assert _post(client, f"/settings/tokens/{token_id}/revoke", {}).status_code == 303
    assert _count(rt, Token, Token.revoked_at.is_not(None)) == 1


def test_emails_page(client: TestClient, world: World, rt: Runtime) -> None:
    world.user("em@example.com")
    _log_in(client, "em@example.com")
    assert _post(client, "/settings/emails", {"email": "em@other.example"}).status_code == 303
    page = client.get("/settings/emails").text
    assert "em@other.example" in page and "unverified" in page
    taken = _post(client, "/settings/emails", {"email": "em@example.com"})
    assert taken.status_code == 409
    assert (
        _post(client, "/settings/emails/remove", {"email": "em@other.example"}).status_code == 303
    )
    assert _count(rt, Email) == 1


def test_audit_page_is_for_admins_with_filters_and_paging(
    client: TestClient, acme: Acme, rt: Runtime
) -> None:
    with rt.db.transaction() as db:
        for n in range(60):
            audit.record(db, Actor(label="bot"), "test.event", org_id=acme.org.id, target=f"t{n}")
    _log_in(client, "writer@acme.example")
    assert client.get("/acme/audit", headers=HTML).status_code == 403
    _log_in(client, "admin@acme.example")
    first = client.get("/acme/audit?action=test.event")
    assert first.status_code == 200 and "t59" in first.text and "t9<" not in first.text
    older = re.search(r'href="(/acme/audit\?[^"]+)">Older events', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert "t9<" in second and "t59" not in second and "Older events" not in second
    by_actor = client.get("/acme/audit?actor=nobody").text
    assert "No events match" in by_actor
    assert _count(rt, AuditEvent, AuditEvent.action == "test.event") == 60


def test_ids_past_the_column_range_are_refused_not_500(client: TestClient, world: World) -> None:
    admin = world.user("huge@acme.test")
    world.org("acme", admin)
    sign_in(client, "huge@acme.test")
    huge = str(2**63)
    for path in (f"/acme/members/{huge}/role", f"/settings/tokens/{huge}/revoke"):
        response = client.post(path, data={"csrf_token": "x", "role": "read"})
        assert 400 <= response.status_code < 500, path
    assert client.get(f"/sso/saml/{huge}/metadata").status_code == 400
