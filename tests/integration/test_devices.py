"""Sessions and devices: the security page and ``/api/v1/me/sessions``, SSO
identities with their removal, and an org admin ending a member's org sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.access import OrgRole
from hubgate.accounts import tokens
from hubgate.app import create_app
from hubgate.db.models import AuditEvent, SsoAuthentication, SsoLink, User, WebSession
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, count, person, sso_org
from tests.integration.test_pages import HTML, _post

ANN = "ann@example.com"
BOB = "bob@acme.example"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " * 3


def _fresh(rt: Runtime, agent: str = "testclient") -> TestClient:
    return TestClient(create_app(runtime=rt), headers={"user-agent": agent})


@pytest.fixture
def ann(world: World) -> User:
    return world.user(ANN)


def _sessions(client: TestClient) -> list[dict[str, object]]:
    answer = client.get("/api/v1/me/sessions")
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, object]] = answer.json()
    return rows


def test_the_api_lists_and_ends_the_callers_sessions(rt: Runtime, ann: User) -> None:
    here, laptop, phone = _fresh(rt, BROWSER), _fresh(rt), _fresh(rt)
    for client in (laptop, phone, here):
        sign_in(client, ANN)
    rows = _sessions(here)
    assert len(rows) == 3 and [r["current"] for r in rows].count(True) == 1
    mine = next(r for r in rows if r["current"])
    assert str(mine["client"]).startswith("Mozilla/5.0") and len(str(mine["client"])) <= 60
    assert mine["client_address"] == "testclient" and mine["sso"] == []
    assert not any("hash" in key for key in mine)
    laptop_id = next(r["id"] for r in _sessions(laptop) if r["current"])
    assert here.delete(f"/api/v1/me/sessions/{laptop_id}").status_code == 204
    assert laptop.get("/api/v1/me").status_code == 401
    assert here.delete(f"/api/v1/me/sessions/{laptop_id}").status_code == 404
    ended = here.delete("/api/v1/me/sessions")
    assert ended.status_code == 200 and ended.json() == {"ended": 1}
    assert phone.get("/api/v1/me").status_code == 401
    assert [r["current"] for r in _sessions(here)] == [True]
    assert count(rt, AuditEvent, AuditEvent.action == "session.ended") == 1
    assert count(rt, AuditEvent, AuditEvent.action == "session.ended_others") == 1


def test_tokens_list_sessions_and_need_write_to_end_them(rt: Runtime, ann: User) -> None:
    browser = _fresh(rt)
    sign_in(browser, ANN)
    with rt.db.transaction() as db:
        read = tokens.issue(db, user_id=ann.id, name="r", scopes="read", expires_at=None)
        write = tokens.issue(db, user_id=ann.id, name="w", scopes="read write", expires_at=None)
    reader = _fresh(rt)
    reader.headers["authorization"] = f"Bearer {read.secret}"
    (row,) = _sessions(reader)
    assert row["current"] is False, "a token is no session"
    refused = reader.delete("/api/v1/me/sessions")
    assert refused.status_code == 403 and refused.json()["error"] == "scope_insufficient"
    assert browser.get("/api/v1/me").status_code == 200
    writer = _fresh(rt)
    writer.headers["authorization"] = f"Bearer {write.secret}"
    assert writer.delete("/api/v1/me/sessions").json() == {"ended": 1}
    assert browser.get("/api/v1/me").status_code == 401


def test_another_persons_session_is_not_found_and_stays(
    rt: Runtime, world: World, ann: User
) -> None:
    world.user("cat@example.com")
    ann_client, cat_client = _fresh(rt), _fresh(rt)
    sign_in(ann_client, ANN)
    sign_in(cat_client, "cat@example.com")
    cats = _sessions(cat_client)[0]["id"]
    assert ann_client.delete(f"/api/v1/me/sessions/{cats}").status_code == 404
    for bad in ("0", "-1", "99999999999999", "abc"):
        assert ann_client.delete(f"/api/v1/me/sessions/{bad}").status_code in (400, 404)
    form = _post(ann_client, f"/account/sessions/{cats}/end", {}, csrf_from="/account/security")
    assert form.status_code == 404
    assert cat_client.get("/api/v1/me").status_code == 200
    assert count(rt, AuditEvent, AuditEvent.reason == "not_found") == 2, "the 404s are audited"
    assert _fresh(rt).get("/api/v1/me/sessions").status_code == 401
    no_csrf = ann_client.delete("/api/v1/me/sessions", headers={"x-csrf-token": "nope"})
    assert no_csrf.status_code == 403 and cat_client.get("/api/v1/me").status_code == 200


def test_the_security_page_lists_and_ends_sessions(rt: Runtime, ann: User) -> None:
    here, other = _fresh(rt, BROWSER), _fresh(rt)
    sign_in(other, ANN)
    sign_in(here, ANN)
    page = here.get("/account/security", headers=HTML)
    assert page.status_code == 200 and "this session" in page.text
    assert 'href="/settings/emails"' in page.text and "Change password" in page.text
    assert 'href="/account/security"' in page.text, "the account menu links the page"
    ended = _post(here, "/account/sessions/end-others", {}, csrf_from="/account/security")
    assert ended.status_code == 303 and other.get("/api/v1/me").status_code == 401
    with rt.db.transaction() as db:
        own = db.scalar(select(WebSession.id))
    out = _post(here, f"/account/sessions/{own}/end", {}, csrf_from="/account/security")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert count(rt, WebSession) == 0
    anonymous = _fresh(rt).get("/account/security", headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_the_security_page_lists_tokens_with_revoke(
    client: TestClient, rt: Runtime, ann: User
) -> None:
    sign_in(client, ANN)
    created = client.post("/api/v1/me/tokens", json={"name": "laptop", "scopes": ["read"]})
    token_id = created.json()["id"]
    page = client.get("/account/security", headers=HTML)
    assert "laptop" in page.text and f'action="/settings/tokens/{token_id}/revoke"' in page.text


# -- SSO ----------------------------------------------------------------------------------


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    org = sso_org(rt, world)
    world.member(org.org, world.user(BOB), OrgRole.WRITE)
    org.set_mode("basic")
    return org


def test_sessions_show_the_sso_authentications_they_hold(rt: Runtime, acme: SsoOrg) -> None:
    client = _fresh(rt)
    sign_in(client, BOB)
    assert acme.sign_in(client, **person(BOB))["status"] == 200
    client.headers["x-csrf-token"] = client.get("/api/v1/me").json()["csrf_token"]
    (row,) = _sessions(client)
    (held,) = row["sso"]
    assert isinstance(held, dict) and held["org"] == "acme" and held["connection"]
    at = datetime.fromisoformat(held["authenticated_at"])
    until = datetime.fromisoformat(held["fresh_until"])
    assert at < until <= at + timedelta(days=7), "the org's timeout or the IdP's expiry"
    me = client.get("/api/v1/me").json()
    assert datetime.fromisoformat(me["orgs"][0]["sso_fresh_until"]) == until
    page = client.get("/account/security", headers=HTML)
    assert "fresh until" in page.text and "acme" in page.text


def test_removing_an_sso_identity_ends_its_sso_authentications(
    rt: Runtime, world: World, acme: SsoOrg
) -> None:
    client = _fresh(rt)
    sign_in(client, BOB)
    acme.sign_in(client, **person(BOB, name_id="okta|bob"))
    client.headers["x-csrf-token"] = client.get("/api/v1/me").json()["csrf_token"]
    (link,) = client.get("/api/v1/me/sso-links").json()
    assert link["org"] == "acme" and link["subject"] == "okta|bob"
    assert count(rt, SsoAuthentication) == 1
    stranger = _fresh(rt)
    world.user("cat@example.com")
    sign_in(stranger, "cat@example.com")
    assert stranger.delete(f"/api/v1/me/sso-links/{link['id']}").status_code == 404
    assert count(rt, SsoLink) == 1
    assert count(rt, AuditEvent, AuditEvent.action == "sso.unlink_refused") == 1
    page = client.get("/account/security", headers=HTML)
    assert f'action="/account/sso-links/{link["id"]}/remove"' in page.text
    removed = _post(
        client, f"/account/sso-links/{link['id']}/remove", {}, csrf_from="/account/security"
    )
    assert removed.status_code == 303
    assert count(rt, SsoLink) == 0 and count(rt, SsoAuthentication) == 0
    assert client.get("/api/v1/me").json()["orgs"][0]["sso"] == "stale"
    assert count(rt, AuditEvent, AuditEvent.action == "sso.unlinked") == 1
    assert client.delete(f"/api/v1/me/sso-links/{link['id']}").status_code == 404


def test_an_admin_ends_a_members_org_sessions(rt: Runtime, acme: SsoOrg) -> None:
    through_sso, with_password = _fresh(rt), _fresh(rt)
    sign_in(through_sso, BOB)
    assert acme.sign_in(through_sso, **person(BOB))["status"] == 200
    sign_in(with_password, BOB)  # after the first link, which ends other sessions
    admin = _fresh(rt)
    sign_in(admin, "admin@acme.example")
    stale = admin.post(f"/api/v1/orgs/acme/members/{BOB}/end-sessions")
    assert stale.status_code == 401 and stale.json()["error"] == "sso_required"
    acme.sign_in(admin, **person("admin@acme.example"))  # basic mode: admins need SSO too
    admin.headers["x-csrf-token"] = admin.get("/api/v1/me").json()["csrf_token"]
    through_sso.headers["x-csrf-token"] = through_sso.get("/api/v1/me").json()["csrf_token"]
    refused = through_sso.post(f"/api/v1/orgs/acme/members/{BOB}/end-sessions")
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_role"
    assert through_sso.get("/api/v1/me").status_code == 200
    no_one = admin.post("/api/v1/orgs/acme/members/nobody@acme.example/end-sessions")
    assert no_one.status_code == 404
    ended = admin.post(f"/api/v1/orgs/acme/members/{BOB}/end-sessions")
    assert ended.status_code == 200 and ended.json() == {"ended": 1}
    assert through_sso.get("/api/v1/me").status_code == 401
    assert with_password.get("/api/v1/me").status_code == 200, "not an acme sign-in"
    assert count(rt, AuditEvent, AuditEvent.action == "member.sessions_ended") == 1
    refusals = AuditEvent.action == "member.sessions_end_refused"
    assert count(rt, AuditEvent, refusals) == 3, "not signed in through SSO, not admin, nobody"


def test_the_members_page_ends_a_managed_accounts_sessions(
    rt: Runtime, world: World, acme: SsoOrg
) -> None:
    acme.set_mode("managed")
    person_client = _fresh(rt)
    assert acme.sign_in(person_client, **person("jit@acme.example"))["status"] == 200
    with rt.db.transaction() as db:
        jit = db.scalars(select(User).where(User.managed_by_org_id == acme.org.id)).one()
        jit_id = jit.id
    admin = _fresh(rt)
    acme.sign_in(admin, **person("admin@acme.example"))
    page = admin.get("/acme/members", headers=HTML)
    assert f'action="/acme/members/{jit_id}/end-sessions"' in page.text
    done = _post(admin, f"/acme/members/{jit_id}/end-sessions", {}, csrf_from="/acme/members")
    assert done.status_code == 200 and "1 session(s) ended" in done.text
    assert person_client.get("/api/v1/me").status_code == 401
    assert admin.get("/api/v1/me").status_code == 200
