"""Organizations, members, teams, resources and tokens over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.db.models import AuditEvent, Membership, Resource, Token
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in


@pytest.fixture
def acme(world: World) -> World:
    """acme: admin@ (admin), writer@ (write), reader@ (read), contrib@ (contributor);
    outsider@ belongs nowhere."""
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    for email, role in [
        ("writer@acme.test", OrgRole.WRITE),
        ("reader@acme.test", OrgRole.READ),
        ("contrib@acme.test", OrgRole.CONTRIBUTOR),
    ]:
        world.member(org, world.user(email), role)
    world.user("outsider@else.test")
    return world


Login = Callable[[str], TestClient]


@pytest.fixture
def login(rt: Runtime) -> Login:
    """A fresh signed-in client per person, all on one app."""
    app = create_app(runtime=rt)

    def make(email: str) -> TestClient:
        client = TestClient(app)
        sign_in(client, email)
        return client

    return make


def _count(rt: Runtime, model: type, *where: object) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_create_org_makes_creator_admin_with_default_team(login: Login, acme: World) -> None:
    client = login("writer@acme.test")
    created = client.post("/api/v1/orgs", json={"name": "labs", "display_name": "Labs"})
    assert created.status_code == 201
    teams = client.get("/api/v1/orgs/labs/teams").json()
    assert [(t["name"], t["is_default"]) for t in teams] == [("everyone", True)]
    members = client.get("/api/v1/orgs/labs/members").json()
    assert [(m["email"], m["role"]) for m in members] == [("writer@acme.test", "admin")]


@pytest.mark.parametrize("name", ["api", "login", "Bad", "-x", "a--b", "x" * 65, "sso"])
def test_org_names_are_slugs_and_not_reserved(login: Login, acme: World, name: str) -> None:
    response = login("writer@acme.test").post("/api/v1/orgs", json={"name": name})
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_name", "name_reserved", "invalid_request"}


def test_org_name_collision_is_409(login: Login, acme: World) -> None:
    response = login("writer@acme.test").post("/api/v1/orgs", json={"name": "acme"})
    assert response.status_code == 409 and response.json()["error"] == "name_taken"


def test_unverified_person_cannot_create_org(login: Login, world: World) -> None:
    world.user("new@else.test", verified=False)
    response = login("new@else.test").post("/api/v1/orgs", json={"name": "neworg"})
    assert response.status_code == 403 and response.json()["error"] == "account_unverified"


def test_admin_manages_members_and_last_admin_is_protected(
    login: Login, acme: World, rt: Runtime
) -> None:
    admin = login("admin@acme.test")
    added = admin.post(
        "/api/v1/orgs/acme/members", json={"email": "outsider@else.test", "role": "read"}
    )
    assert added.status_code == 201 and added.json()["teams"] == {"everyone": "read"}
    user_id = added.json()["user_id"]
    promoted = admin.patch(f"/api/v1/orgs/acme/members/{user_id}", json={"role": "write"})
    assert promoted.json()["role"] == "write"
    assert admin.delete(f"/api/v1/orgs/acme/members/{user_id}").status_code == 204
    me = admin.get("/api/v1/me").json()["id"]
    demote = admin.patch(f"/api/v1/orgs/acme/members/{me}", json={"role": "write"})
    assert demote.status_code == 409 and demote.json()["error"] == "last_admin"
    leave = admin.delete(f"/api/v1/orgs/acme/members/{me}")
    assert leave.status_code == 409
    assert _count(rt, Membership, Membership.role == "admin") == 1


def test_non_admin_cannot_manage_members(login: Login, acme: World, rt: Runtime) -> None:
    writer = login("writer@acme.test")
    before = _count(rt, Membership)
    response = writer.post("/api/v1/orgs/acme/members", json={"email": "outsider@else.test"})
    assert response.status_code == 403 and response.json()["error"] == "insufficient_role"
    assert _count(rt, Membership) == before
    outsider = login("outsider@else.test")
    assert outsider.get("/api/v1/orgs/acme/members").status_code == 403


def test_team_restricted_private_resource(login: Login, acme: World) -> None:
    admin = login("admin@acme.test")
    admin.post("/api/v1/orgs/acme/teams", json={"name": "research"})
    writer_id = next(
        m["user_id"]
        for m in admin.get("/api/v1/orgs/acme/members").json()
        if m["email"] == "writer@acme.test"
    )
    created = admin.post(
        "/api/v1/orgs/acme/resources",
        json={"kind": "model", "name": "secret", "visibility": "private", "team": "research"},
    )
    assert created.status_code == 201
    writer = login("writer@acme.test")
    assert writer.get("/api/v1/orgs/acme/resources/models/secret").status_code == 404
    assert "secret" not in [r["name"] for r in writer.get("/api/v1/orgs/acme/resources").json()]
    joined = admin.put(
        f"/api/v1/orgs/acme/teams/research/members/{writer_id}", json={"role": "read"}
    )
    assert joined.status_code == 200
    assert writer.get("/api/v1/orgs/acme/resources/models/secret").status_code == 200
    change = writer.patch("/api/v1/orgs/acme/resources/models/secret", json={"description": "x"})
    assert change.status_code == 403 and change.json()["error"] == "insufficient_role"


def test_roles_on_org_resources(login: Login, acme: World, rt: Runtime) -> None:
    reader, contrib, writer = (login(f"{n}@acme.test") for n in ("reader", "contrib", "writer"))
    denied = reader.post("/api/v1/orgs/acme/resources", json={"kind": "dataset", "name": "d1"})
    assert denied.status_code == 403
    own = contrib.post("/api/v1/orgs/acme/resources", json={"kind": "dataset", "name": "mine"})
    assert own.status_code == 201
    theirs = writer.post("/api/v1/orgs/acme/resources", json={"kind": "dataset", "name": "theirs"})
    assert theirs.status_code == 201
    assert (
        contrib.patch(
            "/api/v1/orgs/acme/resources/datasets/mine", json={"description": "ok"}
        ).status_code
        == 200
    )
    assert (
        contrib.patch(
            "/api/v1/orgs/acme/resources/datasets/theirs", json={"description": "no"}
        ).status_code
        == 403
    )
    assert writer.delete("/api/v1/orgs/acme/resources/datasets/mine").status_code == 403
    assert contrib.delete("/api/v1/orgs/acme/resources/datasets/mine").status_code == 204
    assert reader.get("/api/v1/orgs/acme/resources/datasets/theirs").status_code == 200
    assert _count(rt, Resource) == 1


def test_public_resources_are_open_and_private_names_hidden(
    login: Login, acme: World, client: TestClient
) -> None:
    admin = login("admin@acme.test")
    admin.post(
        "/api/v1/orgs/acme/resources",
        json={"kind": "model", "name": "open", "visibility": "public"},
    )
    admin.post("/api/v1/orgs/acme/resources", json={"kind": "model", "name": "closed"})
    assert client.get("/api/v1/orgs/acme/resources/models/open").status_code == 200
    hidden = client.get("/api/v1/orgs/acme/resources/models/closed")
    missing = client.get("/api/v1/orgs/acme/resources/models/nothing-here")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"] == missing.json()["error"] == "not_found"
    assert [r["name"] for r in client.get("/api/v1/orgs/acme/resources").json()] == ["open"]
    outsider = login("outsider@else.test")
    assert outsider.get("/api/v1/orgs/acme/resources/models/closed").status_code == 404


def test_personal_token_lifecycle(
    login: Login, acme: World, rt: Runtime, client: TestClient
) -> None:
    writer = login("writer@acme.test")
    writer.post("/api/v1/orgs/acme/resources", json={"kind": "model", "name": "m"})
    made = writer.post(
        "/api/v1/me/tokens", json={"name": "ci", "scopes": ["read"], "expires_in_days": 30}
    )
    assert made.status_code == 201
    secret = made.json()["token"]
    assert secret.startswith("hg_") and made.json()["hint"] == secret[:8]
    listed = writer.get("/api/v1/me/tokens").json()
    assert "token" not in listed[0] and listed[0]["scopes"] == ["read"]
    with rt.db.transaction() as db:
        stored = db.scalars(select(Token.secret_hash)).one()
    assert secret not in stored
    bearer = {"authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/orgs/acme/resources/models/m", headers=bearer).status_code == 200
    write = client.patch(
        "/api/v1/orgs/acme/resources/models/m", json={"description": "x"}, headers=bearer
    )
    assert write.status_code == 403 and write.json()["error"] == "scope_insufficient"
    by_token = client.post(
        "/api/v1/me/tokens", json={"name": "x", "scopes": ["write"]}, headers=bearer
    )
    assert by_token.status_code == 401
    assert writer.get("/api/v1/me/tokens").json()[0]["last_used_at"] is not None
    assert writer.delete(f"/api/v1/me/tokens/{made.json()['id']}").status_code == 204
    revoked = client.get("/api/v1/orgs/acme/resources/models/m", headers=bearer)
    assert revoked.status_code == 401 and revoked.json()["error"] == "token_revoked"


def test_bad_tokens_and_scopes(login: Login, acme: World, client: TestClient) -> None:
    writer = login("writer@acme.test")
    bad_scope = writer.post("/api/v1/me/tokens", json={"name": "x", "scopes": ["full"]})
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    for header in ["Bearer nope", "Bearer hg_" + "a" * 43, "Basic abc", "Bearer hg_" + "x" * 500]:
        response = client.get("/api/v1/me", headers={"authorization": header})
        assert response.status_code == 401 and response.json()["error"] == "token_invalid", header


def test_team_tokens(login: Login, acme: World, client: TestClient) -> None:
    admin = login("admin@acme.test")
    admin.post("/api/v1/orgs/acme/teams", json={"name": "serving"})
    admin.post(
        "/api/v1/orgs/acme/resources",
        json={"kind": "deployment", "name": "chat", "team": "serving"},
    )
    admin.post(
        "/api/v1/orgs/acme/resources", json={"kind": "model", "name": "weights", "team": "serving"}
    )
    made = admin.post(
        "/api/v1/orgs/acme/teams/serving/tokens", json={"name": "svc", "scopes": ["inference"]}
    )
    assert made.status_code == 201 and made.json()["team"] == "serving"
    bearer = {"authorization": f"Bearer {made.json()['token']}"}
    read = client.get("/api/v1/orgs/acme/resources/models/weights", headers=bearer)
    assert read.status_code == 403 and read.json()["error"] == "scope_insufficient"
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    writer = login("writer@acme.test")
    denied = writer.post(
        "/api/v1/orgs/acme/teams/serving/tokens", json={"name": "x", "scopes": ["read"]}
    )
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_role"
    call = client.get("/api/v1/orgs/acme/resources/deployments/chat", headers=bearer)
    assert call.status_code == 403


def test_audit_log_is_admin_only_paged_and_filterable(login: Login, acme: World) -> None:
    admin = login("admin@acme.test")
    for n in range(3):
        admin.post("/api/v1/orgs/acme/resources", json={"kind": "model", "name": f"m{n}"})
    page = admin.get(
        "/api/v1/orgs/acme/audit", params={"action": "resource.created", "limit": 2}
    ).json()
    assert [e["target"] for e in page["events"]] == ["model/m2", "model/m1"]
    rest = admin.get(
        "/api/v1/orgs/acme/audit",
        params={"action": "resource.created", "limit": 2, "before_id": page["next_before_id"]},
    ).json()
    assert [e["target"] for e in rest["events"]] == ["model/m0"] and rest["next_before_id"] is None
    by_actor = admin.get("/api/v1/orgs/acme/audit", params={"actor": "admin@acme.test"}).json()
    assert {e["actor"] for e in by_actor["events"]} == {"admin@acme.test"}
    export = admin.get("/api/v1/orgs/acme/audit/export")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert len(export.text.strip().splitlines()) >= 4
    assert login("writer@acme.test").get("/api/v1/orgs/acme/audit").status_code == 403


def test_refusals_change_nothing(login: Login, acme: World, rt: Runtime) -> None:
    writer = login("writer@acme.test")
    before = (_count(rt, AuditEvent), _count(rt, Resource))
    attempts = [
        writer.post("/api/v1/orgs/acme/resources", json={"kind": "model", "name": "../x"}),
        writer.post("/api/v1/orgs/acme/resources", json={"kind": "weights", "name": "x"}),
        writer.post(
            "/api/v1/orgs/acme/resources", json={"kind": "model", "name": "x", "team": "nope"}
        ),
        writer.post("/api/v1/orgs/nope/resources", json={"kind": "model", "name": "x"}),
        writer.post(
            "/api/v1/orgs/acme/resources",
            content=b"{",
            headers={"content-type": "application/json"},
        ),
    ]
    assert [a.status_code for a in attempts] == [400, 400, 400, 404, 400]
    assert (_count(rt, AuditEvent), _count(rt, Resource)) == before


def test_who_may_not_manage_members_learns_nothing_about_accounts_or_teams(
    login: Login, acme: World
) -> None:
    """The service checks access before it looks anyone (or any team) up: a writer
    asking about an account or a team that does not exist is refused as for one
    that does, never told 404."""
    writer = login("writer@acme.test")
    added = writer.post("/api/v1/orgs/acme/members", json={"email": "nobody@else.test"})
    assert added.status_code == 403 and added.json()["error"] == "insufficient_role"
    for method, path, body in [
        ("PATCH", "/api/v1/orgs/acme/members/999999", {"role": "admin"}),
        ("DELETE", "/api/v1/orgs/acme/members/999999/pin", None),
        ("DELETE", "/api/v1/orgs/acme/members/999999", None),
        ("DELETE", "/api/v1/orgs/acme/teams/no-such-team", None),
    ]:
        refused = writer.request(method, path, json=body)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"] == "insufficient_role"
    admin = login("admin@acme.test")
    missing = admin.post("/api/v1/orgs/acme/members", json={"email": "nobody@else.test"})
    assert missing.status_code == 404
    assert admin.delete("/api/v1/orgs/acme/members/999999").status_code == 404
