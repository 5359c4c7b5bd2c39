"""The SSO policy's settings from the outside: the JSON API (org admins), the
operator's CLI, the email-first sign-in page and the SSO banner."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from hubgate.access import OrgRole, Visibility
from hubgate.app import create_app
from hubgate.db.models import AuditEvent, Invitation, OrgSso, RoleMapping, SsoConnection
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, count, person, sso_org
from tests.integration.test_cli import Run, as_json, hubgate  # noqa: F401 - the fixture

HTML = {"accept": "text/html"}


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def admin(client: TestClient, acme: SsoOrg) -> TestClient:
    sign_in(client, "admin@acme.example")
    return client


def _settings(client: TestClient, **body: Any) -> Any:
    return client.patch("/api/v1/orgs/acme/sso/settings", json=body)


def test_admin_changes_settings_and_each_change_is_audited(admin: TestClient, rt: Runtime) -> None:
    answer = _settings(
        admin, mode="basic-optional", session_timeout_seconds=8 * 3600, default_role="read"
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "mode": "basic-optional", "enforced": True, "session_timeout_seconds": 28800,
        "default_role": "read", "default_team": None,
    }  # fmt: skip
    with rt.db.transaction() as db:
        changes = db.query(AuditEvent).filter(AuditEvent.action == "sso.settings_changed").all()
    assert len(changes) == 2 and all(e.actor == "admin@acme.example" for e in changes)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"session_timeout_seconds": 60}, 400, "invalid_request"),
        ({"session_timeout_seconds": 91 * 86400}, 400, "invalid_request"),
        ({"mode": "enforced"}, 400, "invalid_request"),
        ({"default_team": "nope"}, 404, "not_found"),
        ({"default_role": "owner"}, 400, "invalid_request"),
        ({"unknown": 1}, 400, "invalid_request"),
    ],
)
def test_invalid_settings_are_refused_and_change_nothing(
    admin: TestClient, rt: Runtime, body: dict[str, Any], status: int, code: str
) -> None:
    answer = _settings(admin, **body)
    assert (answer.status_code, answer.json()["error"]) == (status, code)
    assert count(rt, OrgSso) == 0


def test_managed_mode_needs_an_active_connection_and_a_verified_domain(
    admin: TestClient, rt: Runtime
) -> None:
    with rt.db.transaction() as db:
        db.execute(update(SsoConnection).values(state="verified"))
    assert _settings(admin, mode="managed").json()["error"] == "sso_not_configured"
    assert count(rt, OrgSso) == 0


def test_non_admins_cannot_read_or_change_the_policy(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    sign_in(client, "bob@acme.example")
    assert client.get("/api/v1/orgs/acme/sso/settings").status_code == 403
    assert _settings(client, mode="off").status_code == 403
    assert client.put("/api/v1/orgs/acme/sso/role-mappings", json=[]).status_code == 403
    assert client.post("/api/v1/orgs/acme/sso/join-link", json={}).status_code == 403
    outsider = TestClient(create_app(runtime=rt))
    assert outsider.get("/api/v1/orgs/acme/sso/settings").status_code == 401


def test_admin_actions_need_a_fresh_sso_in_basic_mode(
    client: TestClient, admin: TestClient, acme: SsoOrg
) -> None:
    assert _settings(admin, mode="basic").status_code == 200
    refused = _settings(admin, default_role="read")
    assert refused.status_code == 401 and refused.json()["error"] == "sso_required"
    assert acme.sign_in(client, **person("admin@acme.example"))["status"] == 200
    client.headers["x-csrf-token"] = client.get("/api/v1/me").json()["csrf_token"]
    assert _settings(client, default_role="read").status_code == 200


def test_mappings_and_their_preview(admin: TestClient, rt: Runtime) -> None:
    admin.post("/api/v1/orgs/acme/teams", json={"name": "research"})
    roles = [
        {"attribute": "groups", "value": "hub-admins", "role": "admin"},
        {"attribute": "groups", "value": "ml", "role": "write"},
        {"attribute": "department", "value": "Research", "role": "contributor"},
    ]
    assert admin.put("/api/v1/orgs/acme/sso/role-mappings", json=roles).status_code == 200
    teams = [{"attribute": "groups", "value": "ml", "team": "research", "team_role": "write"}]
    assert admin.put("/api/v1/orgs/acme/sso/team-mappings", json=teams).status_code == 200
    preview = admin.post(
        "/api/v1/orgs/acme/sso/mappings/preview",
        json={"groups": ["ml"], "attributes": {"department": ["Research"]}},
    ).json()
    assert preview == {
        "role": "write", "teams": {"research": "write"}, "role_rule": "groups=ml", "pinned": []
    }  # fmt: skip
    nothing = admin.post("/api/v1/orgs/acme/sso/mappings/preview", json={"groups": ["x"]}).json()
    assert nothing == {"role": None, "teams": {}, "role_rule": None, "pinned": []}
    bad_team = [{"attribute": "groups", "value": "ml", "team": "nope", "team_role": "write"}]
    answer = admin.put("/api/v1/orgs/acme/sso/team-mappings", json=bad_team)
    assert answer.json()["error"] == "invalid_mapping"
    settings = admin.get("/api/v1/orgs/acme/sso/settings").json()
    assert settings["team_mappings"][0]["team"] == "research"  # the refusal changed nothing
    assert count(rt, RoleMapping) == 3


def test_invitations(admin: TestClient, rt: Runtime) -> None:
    answer = admin.post(
        "/api/v1/orgs/acme/sso/invitations",
        json={"email": "Ada@ACME.example", "role": "read", "teams": {"everyone": "read"}},
    )
    assert answer.status_code == 201 and answer.json()["email"] == "ada@acme.example"
    listed = admin.get("/api/v1/orgs/acme/sso/invitations").json()
    assert [(i["email"], i["role"], i["teams"]) for i in listed] == [
        ("ada@acme.example", "read", [["everyone", "read"]])
    ]
    bad = admin.post("/api/v1/orgs/acme/sso/invitations", json={"email": "a@@b", "role": "read"})
    assert bad.status_code == 400 and count(rt, Invitation) == 1
    assert admin.delete("/api/v1/orgs/acme/sso/invitations/ada@acme.example").status_code == 204
    assert count(rt, Invitation) == 0


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_the_join_link_rotates(admin: TestClient, client: TestClient) -> None:
    first = admin.post("/api/v1/orgs/acme/sso/join-link", json={}).json()["join_url"]
    second = admin.post(
        "/api/v1/orgs/acme/sso/join-link", json={"expires_in_seconds": 3600}
    ).json()["join_url"]
    assert client.get(_path(first), follow_redirects=False).status_code == 404
    assert client.get(_path(second), follow_redirects=False).status_code == 303
    assert admin.delete("/api/v1/orgs/acme/sso/join-link").status_code == 204
    assert client.get(_path(second), follow_redirects=False).status_code == 404
    assert client.get("/sso/join/x", follow_redirects=False).status_code == 404


def test_connections_activate_only_after_a_test_sign_in(
    admin: TestClient, rt: Runtime, world: World
) -> None:
    with rt.db.transaction() as db:
        db.execute(update(SsoConnection).values(state="draft", verified_at=None))
    refused = admin.post("/api/v1/orgs/acme/sso/connections/1/activate")
    assert refused.status_code == 409 and refused.json()["error"] == "connection_unverified"
    with rt.db.transaction() as db:
        db.execute(update(SsoConnection).values(state="verified", verified_at=rt.now()))
    assert admin.post("/api/v1/orgs/acme/sso/connections/1/activate").json()["state"] == "active"
    assert _settings(admin, mode="basic-optional").status_code == 200
    last = admin.post("/api/v1/orgs/acme/sso/connections/1/deactivate")
    assert last.status_code == 409 and last.json()["error"] == "last_connection"
    other = sso_org(rt, world, "globex", "globex.example")
    across = admin.post(f"/api/v1/orgs/acme/sso/connections/{other.connection_id}/activate")
    assert across.status_code == 404


def test_collaborators_must_be_outside_the_domains(
    admin: TestClient, world: World, acme: SsoOrg
) -> None:
    world.member(acme.org, world.user("guest@partner.example"), OrgRole.READ)
    world.member(acme.org, world.user("bob@acme.example"), OrgRole.READ)
    ok = admin.put(
        "/api/v1/orgs/acme/sso/collaborators/guest@partner.example", json={"external": True}
    )
    assert ok.status_code == 200
    inside = admin.put(
        "/api/v1/orgs/acme/sso/collaborators/bob@acme.example", json={"external": True}
    )
    assert inside.json()["error"] == "collaborator_in_domain"


# -- pages -----------------------------------------------------------------------------


def _csrf_form(client: TestClient, path: str = "/login") -> dict[str, str]:
    page = client.get(path, headers=HTML).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return {"csrf_token": token}


def _page_without(text: str, email: str) -> str:
    """The page less the echoed email and the per-response CSRF token."""
    before, _, rest = text.replace(email, "").partition('name="csrf_token"')
    return before + rest.partition('name="next"')[2]


def test_email_first_sign_in_picks_the_idp_only_when_the_org_signs_in_through_it(
    client: TestClient, acme: SsoOrg
) -> None:
    def step(email: str) -> Any:
        form = _csrf_form(client) | {"email": email, "next": "/acme"}
        return client.post("/login", data=form, headers=HTML, follow_redirects=False)

    acme.set_mode("basic")
    assert step("ada@acme.example").status_code == 200  # basic mode: the password step
    acme.set_mode("managed")
    sso = step("ada@ACME.example")
    assert sso.status_code == 303
    assert (
        sso.headers["location"] == f"/sso/acme/start?next=%2Facme&connection={acme.connection_id}"
    )
    unknown, foreign = step("nobody@nowhere.example"), step("admin@acme.example.evil")
    assert unknown.status_code == foreign.status_code == 200
    assert _page_without(unknown.text, "nobody@nowhere.example") == _page_without(
        foreign.text, "admin@acme.example.evil"
    )
    assert 'name="password"' in unknown.text


def test_the_banner_starts_sso_and_the_optional_one_can_be_dismissed(
    client: TestClient, world: World, acme: SsoOrg
) -> None:
    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    acme.resource("open", Visibility.PUBLIC)
    acme.set_mode("basic")
    sign_in(client, "bob@acme.example")
    page = client.get("/acme", headers=HTML).text
    assert "requires single sign-on" in page and 'href="/sso/acme/start?next=/acme"' in page
    assert "requires single sign-on" in client.get("/acme/models/open", headers=HTML).text
    acme.set_mode("basic-optional")
    page = client.get("/acme", headers=HTML).text
    assert "rolling out single sign-on" in page and "Not now" in page
    dismissed = client.post(
        "/acme/sso-banner/dismiss", data=_csrf_form(client, "/acme"), headers=HTML
    )
    assert dismissed.status_code == 200 and "rolling out single sign-on" not in dismissed.text
    assert acme.sign_in(client, **person("bob@acme.example"))["status"] == 200
    acme.set_mode("basic")
    assert 'class="banner' not in client.get("/acme", headers=HTML).text  # fresh: no banner


# -- the operator's CLI ------------------------------------------------------------------


def test_the_operator_cli_sets_the_policy(hubgate: Run, rt: Runtime, acme: SsoOrg) -> None:  # noqa: F811
    assert as_json(hubgate, "sso", "mode", "--org", "acme", "managed")["mode"] == "managed"
    assert as_json(hubgate, "sso", "enforce", "--org", "acme", "off")["enforced"] is False
    settings = as_json(
        hubgate, "sso", "settings", "--org", "acme", "--session-timeout", "8h",
        "--default-role", "read",
    )  # fmt: skip
    assert settings["session_timeout_seconds"] == 28800 and settings["default_role"] == "read"
    mapped = as_json(
        hubgate, "sso", "role-map", "--org", "acme", "--map", "groups=hub-admins:admin"
    )
    assert mapped == [{"attribute": "groups", "value": "hub-admins", "role": "admin"}]
    assert as_json(hubgate, "sso", "join-link", "--org", "acme")["state"] == "none"
    link = as_json(hubgate, "sso", "join-link", "--org", "acme", "--rotate", "--expires", "7d")
    assert link["join_url"].startswith("http://127.0.0.1:8000/sso/join/")
    assert link["state"] == "live" and link["expires_at"] is not None
    shown = as_json(hubgate, "sso", "join-link", "--org", "acme")
    assert shown["join_url"] == link["join_url"]  # shown again, not rotated
    invited = as_json(
        hubgate, "sso", "invite", "--org", "acme", "ada@acme.example", "--role", "read"
    )
    assert invited["role"] == "read"
    bad = hubgate("sso", "settings", "--org", "acme", "--session-timeout", "soon", ok=False)
    assert bad.exit_code != 0 and "duration" in bad.output
    bad_map = hubgate("sso", "role-map", "--org", "acme", "--map", "groups", ok=False)
    assert bad_map.exit_code != 0
    with rt.db.transaction() as db:
        actions = [e.action for e in db.query(AuditEvent).order_by(AuditEvent.id)]
        events = [
            json.loads(e.data)
            for e in db.query(AuditEvent).filter(AuditEvent.action == "sso.enforcement_changed")
        ]
    assert "sso.join_link_rotated" in actions and "invitation.created" in actions
    assert events == [{"from": "on", "to": "off"}]


def test_my_organizations_show_the_sso_status_and_time_left(
    client: TestClient, world: World, acme: SsoOrg
) -> None:
    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    acme.set_mode("basic")
    sign_in(client, "bob@acme.example")
    assert "SSO needed: sign in" in client.get("/", headers=HTML).text
    assert acme.sign_in(client, **person("bob@acme.example"))["status"] == 200
    home = client.get("/", headers=HTML).text
    # The IdP's SessionNotOnOrAfter (8 hours) ends it before the org's 7 days: said so.
    assert "SSO: 7 hours left" in home
    assert "identity provider's session ends then, sooner than" in home
    assert "7 days between SSO sign-ins" in home
    (membership,) = client.get("/api/v1/me").json()["orgs"]
    assert membership["sso_fresh_until_idp_session"] is True
    long_idp_session = {"session_not_on_or_after": timedelta(days=30)}
    assert acme.sign_in(client, **person("bob@acme.example"), **long_idp_session)["status"] == 200
    home = client.get("/", headers=HTML).text
    assert "SSO: 6 days left" in home and "identity provider's session ends" not in home
