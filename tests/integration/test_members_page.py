"""The Members tab says, for each person, how they sign in (SSO through which
connection, a password, or both), whether they are an external collaborator or
SCIM-managed, and where their role comes from (issue 20 item 9); the page costs
the same number of statements for 5 members as for 50."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hubgate.access import OrgRole, Principal, TeamRole
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import Email, Membership, ScimUser, SsoConnection, SsoLink, User
from hubgate.orgs import queries
from hubgate.runtime import Runtime
from hubgate.sso import invitations, members
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, person, sso_org
from tests.integration.test_scim import scim_for

HTML = {"accept": "text/html"}


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def admin(client: TestClient, acme: SsoOrg) -> TestClient:
    sign_in(client, "admin@acme.example")
    return client


def _connection_name(rt: Runtime, acme: SsoOrg) -> str:
    with rt.db.transaction() as db:
        return db.get_one(SsoConnection, acme.connection_id).name


def _row(page: str, email: str) -> str:
    found = re.search(rf'<tr data-member="{re.escape(email)}">(.*?)</tr>', page, re.S)
    assert found is not None, email
    return found.group(1)


def _sign_in_cell(row: str) -> str:
    found = re.search(r'<td class="sign-in">([^<]*)</td>', row)
    assert found is not None, row
    return found.group(1)


def test_each_member_shows_sign_in_badges_and_role_source(
    admin: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    name = _connection_name(rt, acme)
    acme.set_mode("managed")
    # ada: created just in time by the IdP (no password); the admin also links SSO.
    assert acme.sign_in(TestClient(create_app(runtime=rt)), **person("ada@acme.example"))
    assert acme.sign_in(admin, **person("admin@acme.example"))["status"] == 200
    val = world.user("val@vendor.example")
    world.member(acme.org, val, OrgRole.READ)
    with rt.db.transaction() as db:
        members.set_collaborator(
            db, Actor.system(), Principal.operator(), db.merge(acme.org), db.merge(val), True
        )
    scim_for(rt, TestClient(admin.app), "acme").create_user("sam@acme.example")

    page = admin.get("/acme/members", headers=HTML).text
    admin_row, ada, val_row, sam = (
        _row(page, e)
        for e in (
            "admin@acme.example",
            "ada@acme.example",
            "val@vendor.example",
            "sam@acme.example",
        )
    )
    assert _sign_in_cell(admin_row) == f"SSO ({name}) and password"
    assert _sign_in_cell(ada) == f"SSO ({name})"
    assert _sign_in_cell(val_row) == "password"
    assert "external collaborator</span>" in val_row and "SCIM-managed" not in val_row
    assert "SCIM-managed</span>" in sam and "external collaborator" not in sam
    assert _sign_in_cell(sam) == "no sign-in yet"
    assert ">set by an admin</span>" in admin_row
    assert ">default role</span>" in ada and ">SCIM</span>" in sam

    listed = {m["email"]: m for m in admin.get("/api/v1/orgs/acme/members").json()}
    assert listed["admin@acme.example"]["sso_connections"] == [name]
    assert listed["admin@acme.example"]["has_password"] is True
    assert listed["ada@acme.example"]["sign_in"] == f"SSO ({name})"
    assert listed["val@vendor.example"]["external_collaborator"] is True
    assert listed["sam@acme.example"]["scim_managed"] is True


def _add_members(rt: Runtime, acme: SsoOrg, numbers: range) -> None:
    """Members made straight in the database (password hashing would dominate):
    each linked through the connection, every third SCIM-managed."""
    with rt.db.transaction() as db:
        for n in numbers:
            user = User(display_name=f"Person {n}", password_hash="x" if n % 2 else None)
            user.emails.append(Email(address=f"p{n}@acme.example", domain="acme.example"))
            db.add(user)
            db.flush()
            db.add(Membership(org_id=acme.org.id, user_id=user.id, role="write"))
            db.add(SsoLink(connection_id=acme.connection_id, subject=f"p{n}", user_id=user.id))
            if n % 3 == 0:
                db.add(ScimUser(
                    id=str(uuid.uuid4()), org_id=acme.org.id, user_id=user.id,
                    user_name=f"p{n}", user_name_key=f"p{n}",
                ))  # fmt: skip


@contextmanager
def _statements(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(rt.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", count)


def test_fifty_members_take_two_queries_and_the_page_does_not_grow(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    _add_members(rt, acme, range(4))
    assert admin.get("/acme/members", headers=HTML).status_code == 200  # warm
    with _statements(rt) as few:
        page = admin.get("/acme/members", headers=HTML)
    assert page.status_code == 200 and page.text.count("<tr data-member=") == 5

    _add_members(rt, acme, range(4, 49))
    with rt.db.transaction() as db:
        org = db.merge(acme.org)
        with _statements(rt) as listing:
            rows = queries.members_of(db, org)
    assert len(rows) == 50 and len(listing) == 2, listing
    assert sum(1 for r in rows if r.scim_managed) == 17
    assert sum(1 for r in rows if r.connections) == 49
    with _statements(rt) as many:
        page = admin.get("/acme/members", headers=HTML)
    assert page.status_code == 200 and page.text.count("<tr data-member=") == 50
    assert len(many) == len(few), (len(few), len(many))


def _invite(rt: Runtime, acme: SsoOrg, numbers: range) -> None:
    with rt.db.transaction() as db:
        for n in numbers:
            invitations.invite(
                db, rt, Actor.system(), Principal.operator(), db.merge(acme.org),
                f"new{n}@acme.example", OrgRole.READ, [("everyone", TeamRole.READ)],
            )  # fmt: skip


def test_pending_invitations_do_not_add_queries(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    _invite(rt, acme, range(1))
    assert admin.get("/acme/members", headers=HTML).status_code == 200  # warm
    with _statements(rt) as one:
        assert admin.get("/acme/members", headers=HTML).text.count("data-invitation=") == 1
    _invite(rt, acme, range(1, 20))
    with _statements(rt) as twenty:
        assert admin.get("/acme/members", headers=HTML).text.count("data-invitation=") == 20
    assert len(twenty) == len(one), (len(one), len(twenty))
