"""Admins are never lost, deprovisioning always wins (DESIGN.md §1, issue 17 item 8).

The last-admin rule counts ACTIVE admins only. An admin (pages, API, CLI) never
removes or demotes the last active one; a role mapping keeps them; but SCIM
(``active=false``, DELETE) cuts even the last one, because the identity provider
decides: the audit log gets a ``member.last_admin_deprovisioned`` warning, the
org's pages a banner, and an operator restores an admin from the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, Membership
from hubgate.operator import operator_principal
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import mappings
from hubgate.sso.mappings import RoleRule
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, person, role_of, sso_org
from tests.integration.test_scim import Scim, refused, scim_for

ADMIN, BOB = "admin@acme.example", "bob@acme.example"
BANNER = "This organization has no active admin"


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    """acme: admin@ (admin, by hand, a password) and bob@ (read)."""
    org = sso_org(rt, world)
    world.member(org.org, world.user(BOB), OrgRole.READ)
    return org


@pytest.fixture
def scim(rt: Runtime, client: TestClient, acme: SsoOrg) -> Scim:
    return scim_for(rt, client, "acme")


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return operator_cli(database_url, tmp_path, monkeypatch)


def operator_cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``hubgate ARGS`` as the operator, on the test's database, from a folder with no .env."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(
        env={
            "HUBGATE_SECRET_KEY": None, "HUBGATE_BASE_URL": None, "HUBGATE_ENV": "dev",
            "HUBGATE_DATABASE_URL": database_url, "HUBGATE_PASSWORD_MEMORY_KIB": "1024",
            "HUBGATE_PASSWORD_TIME_COST": "1",
        }
    )  # fmt: skip

    def run(*args: str) -> Result:
        result = runner.invoke(main, list(args))
        assert "Traceback" not in result.output, result.output
        return result

    return run


def _browser(rt: Runtime, email: str) -> TestClient:
    client = TestClient(create_app(runtime=rt))
    sign_in(client, email)
    return client


def _rows(rt: Runtime) -> list[tuple[int, str, str, bool]]:
    with rt.db.transaction() as db:
        found = db.execute(
            select(Membership.user_id, Membership.role, Membership.role_source,
                   Membership.deactivated_at.is_(None)).order_by(Membership.id)
        )  # fmt: skip
        return [tuple(r) for r in found]  # type: ignore[misc]


def _events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db.transaction() as db:
        found = db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(found)


def _second_admin_deactivated(rt: Runtime, world: World, acme: SsoOrg) -> None:
    """carol@ is an admin too, but SCIM deactivated her: she does not count."""
    carol = world.user("carol@acme.example")
    world.member(acme.org, carol, OrgRole.ADMIN)
    with rt.db.transaction() as db:
        db.execute(
            update(Membership)
            .where(Membership.user_id == carol.id, Membership.org_id == acme.org.id)
            .values(deactivated_at=rt.now())
        )


# -- counting active admins ------------------------------------------------------------


def test_a_deactivated_admin_does_not_count(rt: Runtime, world: World, acme: SsoOrg) -> None:
    _second_admin_deactivated(rt, world, acme)
    with rt.db.transaction() as db:
        assert service.admin_count(db, acme.org.id) == 1
    admin = _browser(rt, ADMIN)
    me = admin.get("/api/v1/me").json()["id"]
    before = _rows(rt)
    demote = admin.patch(f"/api/v1/orgs/acme/members/{me}", json={"role": "write"})
    assert demote.status_code == 409 and demote.json()["error"] == "last_admin"
    removed = admin.delete(f"/api/v1/orgs/acme/members/{me}")
    assert removed.status_code == 409 and removed.json()["error"] == "last_admin"
    assert _rows(rt) == before
    assert not _events(rt, "member.role_changed") and not _events(rt, "member.removed")
    assert admin.get("/api/v1/orgs/acme").json()["active_admins"] == 1


def test_a_mapping_never_demotes_the_last_active_admin(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    """Even with a deactivated admin beside them: they count for nothing."""
    acme.set_mode("managed")
    with rt.db.transaction() as db:
        rules = [RoleRule("groups", "hub-admins", OrgRole.ADMIN)]
        mappings.set_role_mappings(
            db, Actor.system(), operator_principal(), db.merge(acme.org), rules
        )
        db.execute(
            update(Membership).where(Membership.role == "admin").values(role_source="mapping")
        )
    _second_admin_deactivated(rt, world, acme)
    assert acme.sign_in(client, **person(ADMIN, "other"))["status"] == 200
    assert role_of(rt, acme.org, ADMIN) is OrgRole.ADMIN
    (kept,) = _events(rt, "role.mapped")
    assert kept.reason == "last_admin" and json.loads(kept.data)["mapped"] == "write"


# -- SCIM deprovisioning wins ----------------------------------------------------------


def test_scim_deactivation_cuts_the_last_admin_and_the_org_says_so(
    rt: Runtime, scim: Scim, acme: SsoOrg, cli: Any
) -> None:
    admin = _browser(rt, ADMIN)
    assert admin.get("/api/v1/orgs/acme/members").status_code == 200
    uid = scim.create_user(ADMIN)["id"]  # links the admin's account
    answer = scim.patch(f"/Users/{uid}", {"op": "replace", "value": {"active": False}})
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text

    assert admin.get("/api/v1/orgs/acme/members").status_code in (403, 404)
    assert admin.patch("/api/v1/orgs/acme/members/1", json={"role": "admin"}).status_code in (
        403,
        404,
    )
    (warning,) = _events(rt, "member.last_admin_deprovisioned")
    assert warning.org_id == acme.org.id and warning.reason == "last_admin"
    assert json.loads(warning.data) == {"level": "warning", "member": ADMIN, "how": "deactivated"}

    bob = _browser(rt, BOB)
    page = bob.get("/acme").text
    assert BANNER in page and "deprovisioned by SCIM on" in page
    assert "hubgate member set-role --org acme EMAIL --role admin" in page
    assert BANNER in bob.get("/acme/members").text
    assert bob.get("/api/v1/orgs/acme").json()["active_admins"] == 0
    anonymous = TestClient(create_app(runtime=rt)).get("/api/v1/orgs/acme").json()
    assert anonymous["active_admins"] is None  # only those who may read the org

    listed = cli("member", "list", "--org", "acme", "--json")
    assert "has no active admin" in listed.stderr
    rows = {m["email"]: m for m in json.loads(listed.stdout)}
    assert rows[ADMIN]["active"] is False and rows[BOB]["active"] is True

    # The operator restores an admin: the deactivated one is SCIM's to reactivate.
    again = cli("member", "set-role", "--org", "acme", ADMIN, "--role", "admin")
    assert again.exit_code == 1 and "member_deactivated" in again.stderr
    restored = cli("member", "set-role", "--org", "acme", BOB, "--role", "admin")
    assert restored.exit_code == 0, restored.output
    assert role_of(rt, acme.org, BOB) is OrgRole.ADMIN
    assert BANNER not in bob.get("/acme").text
    assert bob.get("/api/v1/orgs/acme").json()["active_admins"] == 1


def test_scim_delete_removes_the_last_admin(rt: Runtime, scim: Scim, acme: SsoOrg) -> None:
    admin = _browser(rt, ADMIN)
    uid = scim.create_user(ADMIN)["id"]
    assert scim.call("DELETE", f"/Users/{uid}").status_code == 204
    refused(scim.call("GET", f"/Users/{uid}"), 404)
    assert role_of(rt, acme.org, ADMIN) is None
    assert admin.get("/api/v1/orgs/acme/members").status_code in (403, 404)
    (warning,) = _events(rt, "member.last_admin_deprovisioned")
    assert json.loads(warning.data)["how"] == "deleted"
    assert BANNER in _browser(rt, BOB).get("/acme").text


def test_deprovisioning_one_of_two_admins_writes_no_warning(
    rt: Runtime, world: World, scim: Scim, acme: SsoOrg
) -> None:
    world.member(acme.org, world.user("carol@acme.example"), OrgRole.ADMIN)
    uid = scim.create_user(ADMIN)["id"]
    scim.patch(f"/Users/{uid}", {"op": "replace", "value": {"active": False}})
    assert not _events(rt, "member.last_admin_deprovisioned")
    # The other admin may not remove herself either: the deactivated one does not count.
    carol = _browser(rt, "carol@acme.example")
    me = carol.get("/api/v1/me").json()["id"]
    removed = carol.delete(f"/api/v1/orgs/acme/members/{me}")
    assert removed.status_code == 409 and removed.json()["error"] == "last_admin"
    assert BANNER not in carol.get("/acme").text
