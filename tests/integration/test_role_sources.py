"""Where a role comes from, and pins (issue 17 item 9).

Each member's role says what gave it: a mapping (with the matched value), an
invitation, the default role, SCIM, or an admin by hand. A role a mapping gives
is changed by hand only as a pin (else 409 ``role_mapped``); mappings, at sign-in
and at SCIM group changes, leave a pinned role alone until it is unpinned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, Membership
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import invitations, mappings
from hubgate.sso.mappings import RoleRule
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, person, role_of, sso_org
from tests.integration.test_last_admin import operator_cli
from tests.integration.test_scim import Scim, scim_for

ADMIN, ADA = "admin@acme.example", "ada@acme.example"


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    """acme in managed mode: groups ml-admins -> admin, readers -> read."""
    org = sso_org(rt, world)
    org.set_mode("managed")
    with rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), operator_principal(), db.merge(org.org),
            [RoleRule("groups", "ml-admins", OrgRole.ADMIN),
             RoleRule("groups", "readers", OrgRole.READ)],
        )  # fmt: skip
    return org


def _csrf(client: TestClient) -> str:
    """A page's CSRF token (the page sets the browser's CSRF cookie)."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/acme/members").text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return operator_cli(database_url, tmp_path, monkeypatch)


@pytest.fixture
def admin(rt: Runtime, acme: SsoOrg) -> TestClient:
    """The org's admin (set by hand), signed in through the org's SSO."""
    client = TestClient(create_app(runtime=rt))
    assert acme.sign_in(client, **person(ADMIN))["status"] == 200
    client.headers["x-csrf-token"] = _csrf(client)
    return client


def _members(admin: TestClient) -> dict[str, dict[str, Any]]:
    answer = admin.get("/api/v1/orgs/acme/members")
    assert answer.status_code == 200, answer.text
    return {m["email"]: m for m in answer.json()}


def _user_id(admin: TestClient, email: str) -> int:
    return int(_members(admin)[email]["user_id"])


def _actions(rt: Runtime) -> list[str]:
    with rt.db.transaction() as db:
        return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _membership(rt: Runtime, email: str) -> tuple[str, str, str | None, bool]:
    from hubgate.accounts import users

    with rt.db.transaction() as db:
        user = users.find_by_email(db, email)
        assert user is not None
        row = db.scalars(select(Membership).where(Membership.user_id == user.id)).one()
        return row.role, row.role_source, row.role_detail, row.role_pinned


def test_each_role_says_where_it_comes_from(
    rt: Runtime, client: TestClient, acme: SsoOrg, admin: TestClient, cli: Any
) -> None:
    with rt.db.transaction() as db:
        invitations.invite(
            db, rt, Actor.system("inviter@acme.example"), operator_principal(),
            db.merge(acme.org), "dan@acme.example", OrgRole.CONTRIBUTOR,
        )  # fmt: skip
    for email, groups in (
        (ADA, ("ml-admins", "readers")),
        ("cy@acme.example", ()),
        ("dan@acme.example", ()),
    ):
        fresh = TestClient(create_app(runtime=rt))
        assert acme.sign_in(fresh, **person(email, *groups))["status"] == 200
    scim = scim_for(rt, client, "acme")
    eve = scim.create_user("eve@acme.example")["id"]
    fay = scim.create_user("fay@acme.example")["id"]
    scim.create_group("readers", fay)

    expected = {
        ADMIN: ("admin", "manual", None, "set by an admin"),
        ADA: ("admin", "mapping", "groups=ml-admins", "mapping from IdP group ml-admins"),
        "cy@acme.example": ("write", "default", None, "default role"),
        "dan@acme.example": (
            "contributor", "invitation", "inviter@acme.example",
            "invitation (by inviter@acme.example)",
        ),
        "eve@acme.example": ("write", "scim", None, "SCIM"),
        "fay@acme.example": ("read", "scim", "readers", "SCIM group readers"),
    }  # fmt: skip
    found = {
        email: (m["role"], m["role_source"], m["role_detail"], m["role_origin"])
        for email, m in _members(admin).items()
    }
    assert found == expected
    assert eve  # provisioned, in no group

    page = admin.get("/acme/members").text
    for _role, _source, _detail, origin in expected.values():
        assert f">{origin}</span>" in page
    listed = json.loads(cli("member", "list", "--org", "acme", "--json").stdout)
    assert {m["email"]: m["role_origin"] for m in listed} == {e: v[3] for e, v in expected.items()}
    table = cli("member", "list", "--org", "acme").stdout
    assert "mapping from IdP group ml-admins" in table and "default role" in table


def test_a_mapped_role_is_changed_only_as_a_pin_and_the_pin_holds(
    rt: Runtime, acme: SsoOrg, admin: TestClient
) -> None:
    ada_browser = TestClient(create_app(runtime=rt))
    assert acme.sign_in(ada_browser, **person(ADA, "ml-admins"))["status"] == 200
    ada = _user_id(admin, ADA)
    before = _membership(rt, ADA)
    assert before == ("admin", "mapping", "groups=ml-admins", False)

    refused = admin.patch(f"/api/v1/orgs/acme/members/{ada}", json={"role": "write"})
    assert refused.status_code == 409 and refused.json()["error"] == "role_mapped", refused.text
    assert "groups=ml-admins gives this person admin" in refused.json()["message"]
    assert _membership(rt, ADA) == before
    assert "member.role_changed" not in _actions(rt)
    with rt.db.transaction() as db:  # the refusal is in acme's audit log, with its reason
        last = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert last is not None
        assert (last.action, last.org_id, last.reason) == (
            "request.refused",
            acme.org.id,
            "role_mapped",
        )

    pinned = admin.patch(f"/api/v1/orgs/acme/members/{ada}", json={"role": "write", "pin": True})
    assert pinned.status_code == 200, pinned.text
    assert (
        pinned.json()["role_pinned"] is True
        and pinned.json()["role_origin"] == "pinned by an admin"
    )
    assert _membership(rt, ADA) == ("write", "manual", None, True)
    assert "member.role_pinned" in _actions(rt)

    # A sign-in whose groups map to admin leaves the pinned role alone.
    assert acme.sign_in(ada_browser, **person(ADA, "ml-admins"))["status"] == 200
    assert role_of(rt, acme.org, ADA) is OrgRole.WRITE
    preview = admin.post("/api/v1/orgs/acme/sso/mappings/preview", json={"groups": ["ml-admins"]})
    assert preview.json()["role"] == "admin" and preview.json()["role_rule"] == "groups=ml-admins"
    assert preview.json()["pinned"] == [{"email": ADA, "role": "write"}]
    settings_page = admin.post(
        "/acme/sso/preview", data={"groups": "ml-admins", "csrf_token": _csrf(admin)}
    ).text
    assert "Pinned roles the mappings leave alone" in settings_page and ADA in settings_page

    unpinned = admin.delete(f"/api/v1/orgs/acme/members/{ada}/pin")
    assert unpinned.status_code == 200 and unpinned.json()["role_pinned"] is False
    assert role_of(rt, acme.org, ADA) is OrgRole.WRITE  # until the next sign-in
    again = admin.delete(f"/api/v1/orgs/acme/members/{ada}/pin")
    assert again.status_code == 409 and again.json()["error"] == "not_pinned"
    assert _actions(rt).count("member.role_unpinned") == 1
    assert acme.sign_in(ada_browser, **person(ADA, "ml-admins"))["status"] == 200
    assert _membership(rt, ADA) == ("admin", "mapping", "groups=ml-admins", False)


def test_the_members_page_pins_and_unpins(rt: Runtime, acme: SsoOrg, admin: TestClient) -> None:
    assert acme.sign_in(TestClient(create_app(runtime=rt)), **person(ADA, "readers"))
    ada = _user_id(admin, ADA)
    form = {"role": "contributor", "csrf_token": _csrf(admin)}
    refused = admin.post(f"/acme/members/{ada}/role", data=form)
    assert refused.status_code == 409 and "pin the role to keep yours" in refused.text
    assert _membership(rt, ADA) == ("read", "mapping", "groups=readers", False)
    pinned = admin.post(
        f"/acme/members/{ada}/role", data={**form, "pin": "true"}, follow_redirects=False
    )
    assert pinned.status_code == 303, pinned.text
    page = admin.get("/acme/members").text
    assert f'action="/acme/members/{ada}/unpin"' in page and ">pinned by an admin</span>" in page
    admin.post(f"/acme/members/{ada}/unpin", data={"csrf_token": _csrf(admin)})
    assert _membership(rt, ADA) == ("contributor", "manual", None, False)


def test_a_pinned_role_survives_scim_group_changes(
    rt: Runtime, client: TestClient, acme: SsoOrg, cli: Any
) -> None:
    scim: Scim = scim_for(rt, client, "acme")
    eve = scim.create_user("eve@acme.example")["id"]
    group = scim.create_group("ml-admins", eve)["id"]
    assert _membership(rt, "eve@acme.example") == ("admin", "scim", "ml-admins", False)

    refused = cli("member", "set-role", "--org", "acme", "eve@acme.example", "--role", "read")
    assert refused.exit_code == 1 and "role_mapped" in refused.stderr
    assert "groups=ml-admins gives this person admin" in refused.stderr
    pinned = cli("member", "set-role", "--org", "acme", "eve@acme.example", "--role", "read",
                 "--pin")  # fmt: skip
    assert pinned.exit_code == 0 and "(pinned)" in pinned.stdout

    scim.patch(f"/Groups/{group}", {"op": "remove", "path": f'members[value eq "{eve}"]'})
    scim.patch(f"/Groups/{group}", {"op": "add", "path": "members", "value": [{"value": eve}]})
    with rt.db.transaction() as db:  # a new mapping set remaps SCIM members at once
        mappings.set_role_mappings(
            db, Actor.system(), operator_principal(), db.merge(acme.org),
            [RoleRule("groups", "ml-admins", OrgRole.ADMIN)],
        )  # fmt: skip
    assert _membership(rt, "eve@acme.example") == ("read", "manual", None, True)

    assert cli("member", "unpin", "--org", "acme", "eve@acme.example").exit_code == 0
    twice = cli("member", "unpin", "--org", "acme", "eve@acme.example")
    assert twice.exit_code == 1 and "not_pinned" in twice.stderr
    scim.patch(f"/Groups/{group}", {"op": "remove", "path": f'members[value eq "{eve}"]'})
    scim.patch(f"/Groups/{group}", {"op": "add", "path": "members", "value": [{"value": eve}]})
    assert _membership(rt, "eve@acme.example") == ("admin", "scim", "ml-admins", False)
