"""A connection's display name and its deletion from the outside: the JSON API, the
SSO page and the operator's CLI (issue 20 item 1). Deleting is for connections that
sign nobody in; the SSO links of an inactive one go with it, its domains stay."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hubgate.access import OrgRole, Principal
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, OrgDomain, SsoAuthentication, SsoConnection, SsoLink
from hubgate.runtime import Runtime
from hubgate.sso import activation, connections, domains
from tests.conftest import World, sign_in
from tests.integration.sso_world import count, person, sso_org
from tests.integration.test_cli import Run, as_json, hubgate  # noqa: F401 - the fixture
from tests.integration.test_sso_choice import TwoIdps, add_connection, two_idps

HTML = {"accept": "text/html"}


@pytest.fixture
def two(rt: Runtime, world: World) -> TwoIdps:
    return two_idps(rt, world)


@pytest.fixture
def admin(client: TestClient, two: TwoIdps) -> TestClient:
    sign_in(client, "admin@acme.example")
    return client


def _audited(rt: Runtime, action: str) -> list[dict[str, Any]]:
    with rt.db.transaction() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [json.loads(r.data) for r in rows]


def _connection(admin: TestClient, connection_id: int, **body: Any) -> Any:
    return admin.patch(f"/api/v1/orgs/acme/sso/connections/{connection_id}", json=body)


def test_an_admin_renames_a_connection_and_the_choice_page_shows_it(
    admin: TestClient,
    client: TestClient,
    rt: Runtime,
    two: TwoIdps,
) -> None:
    renamed = _connection(admin, two.labs.connection_id, name="  Labs (Entra ID)  ")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Labs (Entra ID)"
    assert _audited(rt, "sso.connection_renamed") == [
        {"from": "Labs <Entra>", "to": "Labs (Entra ID)"}
    ]
    client.cookies.clear()
    assert ">Labs (Entra ID)</a>" in client.get("/sso/acme/start").text


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("", 400, "invalid_request"),
        ("x" * 121, 400, "invalid_request"),
        ("   ", 400, "invalid_name"),
        ("tab\there", 400, "invalid_name"),
        ("acme okta", 409, "name_taken"),
    ],
)
def test_a_bad_name_is_refused_and_nothing_changes(
    admin: TestClient,
    rt: Runtime,
    two: TwoIdps,
    name: str,
    status: int,
    code: str,
) -> None:
    refused = _connection(admin, two.labs.connection_id, name=name)
    assert refused.status_code == status and refused.json()["error"] == code
    with rt.db.transaction() as db:
        assert db.get_one(SsoConnection, two.labs.connection_id).name == "Labs <Entra>"
    assert _audited(rt, "sso.connection_renamed") == []


def test_another_orgs_connection_and_a_non_admin_are_refused(
    admin: TestClient,
    rt: Runtime,
    world: World,
    two: TwoIdps,
) -> None:
    other = sso_org(rt, world, "other", "other.example")
    path = f"/api/v1/orgs/acme/sso/connections/{other.connection_id}"
    assert admin.patch(path, json={"name": "Mine"}).status_code == 404
    assert admin.delete(path).status_code == 404
    stranger = TestClient(admin.app)
    sign_in(stranger, "admin@other.example")
    mine = f"/api/v1/orgs/acme/sso/connections/{two.labs.connection_id}"
    assert stranger.patch(mine, json={"name": "Mine"}).status_code in (403, 404)
    assert stranger.delete(mine).status_code in (403, 404)
    assert count(rt, SsoConnection) == 3 and _audited(rt, "sso.connection_renamed") == []


def test_an_active_connection_must_be_deactivated_before_it_is_deleted(
    admin: TestClient,
    rt: Runtime,
    two: TwoIdps,
) -> None:
    path = f"/api/v1/orgs/acme/sso/connections/{two.labs.connection_id}"
    refused = admin.delete(path)
    assert refused.status_code == 409 and refused.json()["error"] == "connection_active"
    assert count(rt, SsoConnection) == 2 and _audited(rt, "sso.connection_deleted") == []


@pytest.mark.parametrize("state", ["draft", "verified", "inactive"])
def test_a_connection_that_signs_nobody_in_is_deleted_and_audited(
    admin: TestClient,
    rt: Runtime,
    two: TwoIdps,
    state: str,
) -> None:
    doomed = add_connection(rt, two.okta, "Trial", state)
    deleted = admin.delete(f"/api/v1/orgs/acme/sso/connections/{doomed}")
    assert deleted.status_code == 200 and deleted.json() == {"id": doomed, "links_removed": 0}
    assert count(rt, SsoConnection, SsoConnection.id == doomed) == 0
    [record] = _audited(rt, "sso.connection_deleted")
    assert record["state"] == state and record["name"] == "Trial"
    assert admin.delete(f"/api/v1/orgs/acme/sso/connections/{doomed}").status_code == 404


def test_deleting_an_inactive_connection_removes_its_links_and_keeps_its_domain(
    admin: TestClient, rt: Runtime, world: World, two: TwoIdps
) -> None:
    """People who signed in through it lose that link (it can sign nobody in again);
    the domain it served stays verified, with no connection; the SSO authentication
    it gave stays, with no connection."""
    world.member(two.okta.org, world.user("ada@labs.acme.example"), OrgRole.WRITE)
    signer = TestClient(admin.app)
    sign_in(signer, "ada@labs.acme.example")
    start = f"/sso/acme/start?connection={two.labs.connection_id}"
    assert two.labs.sign_in(signer, start=start, **person("ada@labs.acme.example"))["status"] == 200
    assert count(rt, SsoLink) == 1
    with rt.db.transaction() as db:
        row = db.get_one(SsoConnection, two.labs.connection_id)
        activation.deactivate(db, Actor.system(), Principal.operator(), row)
    page = admin.get("/acme/sso", headers=HTML)
    assert "1 SSO link goes with it" in page.text
    deleted = admin.delete(f"/api/v1/orgs/acme/sso/connections/{two.labs.connection_id}")
    assert deleted.json() == {"id": two.labs.connection_id, "links_removed": 1}
    assert count(rt, SsoLink) == 0 and count(rt, SsoAuthentication) >= 1
    with rt.db.transaction() as db:
        labs = db.scalars(select(OrgDomain).where(OrgDomain.domain == "labs.acme.example")).one()
        assert labs.verified_at is not None and labs.connection_id is None
    [record] = _audited(rt, "sso.connection_deleted")
    assert record["links_removed"] == 1 and record["domains_released"] == ["labs.acme.example"]


def _submit(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    page = client.get("/acme/sso", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(path, data={"csrf_token": token.group(1), **data}, headers=HTML)


def test_the_sso_page_renames_and_deletes(admin: TestClient, rt: Runtime, two: TwoIdps) -> None:
    page = admin.get("/acme/sso", headers=HTML)
    labs = two.labs.connection_id
    assert f'action="/acme/sso/connections/{labs}/delete"' not in page.text  # active
    renamed = _submit(admin, f"/acme/sso/connections/{labs}/rename", {"name": "Labs"})
    assert renamed.status_code == 200 and "Connection renamed." in renamed.text
    taken = _submit(admin, f"/acme/sso/connections/{labs}/rename", {"name": "ACME OKTA"})
    assert taken.status_code == 409 and "has that name" in taken.text
    active = _submit(admin, f"/acme/sso/connections/{labs}/delete", {})
    assert active.status_code == 409 and "deactivate it before deleting" in active.text
    draft = add_connection(rt, two.okta, "Trial", "draft")
    assert (
        f'action="/acme/sso/connections/{draft}/delete"'
        in admin.get("/acme/sso", headers=HTML).text
    )
    gone = _submit(admin, f"/acme/sso/connections/{draft}/delete", {})
    assert gone.status_code == 200 and "Connection deleted." in gone.text
    assert count(rt, SsoConnection) == 2


def test_the_cli_renames_and_deletes(hubgate: Run, rt: Runtime, world: World) -> None:  # noqa: F811
    acme = sso_org(rt, world)
    draft = add_connection(rt, acme, "Trial", "draft")
    shown = as_json(hubgate, "sso", "connection", "rename", str(draft), "Okta (staging)")
    assert shown["name"] == "Okta (staging)"
    refused = hubgate("sso", "connection", "rename", str(draft), "", ok=False)
    assert refused.exit_code != 0 and "printable" in refused.output
    active = hubgate("sso", "connection", "delete", str(acme.connection_id), ok=False)
    assert active.exit_code != 0 and "deactivate it" in active.output
    assert as_json(hubgate, "sso", "connection", "delete", str(draft)) == {
        "id": draft, "links_removed": 0,
    }  # fmt: skip
    assert hubgate("sso", "connection", "delete", "0", ok=False).exit_code != 0
    with rt.db.transaction() as db:
        assert [c.id for c in connections.of_org(db, db.merge(acme.org))] == [acme.connection_id]


def _warnings(admin: TestClient) -> list[str]:
    page = admin.get("/acme/sso", headers=HTML)
    assert page.status_code == 200
    return [
        html.unescape(w)
        for w in re.findall(r'<p class="alert" role="alert">([^<]+)</p>', page.text)
    ]


def test_the_page_warns_what_a_signed_out_person_meets_with_several_active(
    admin: TestClient, rt: Runtime, two: TwoIdps
) -> None:
    """Both connections trust the test IdP and acme.example has no connection;
    labs.acme.example has its own. Each fix takes its warning away."""
    found = _warnings(admin)
    assert len(found) == 2
    assert "'Acme Okta' and 'Labs <Entra>' all trust" in found[0]
    assert found[1].startswith("No active connection serves acme.example: a signed-out person")
    with rt.db.transaction() as db:
        domains.assign_connection(
            db, Actor.system(), Principal.operator(), db.merge(two.okta.org), "acme.example",
            two.okta.connection_id,
        )  # fmt: skip
        db.execute(
            update(SsoConnection)
            .where(SsoConnection.id == two.labs.connection_id)
            .values(name="ACME okta")
        )
    found = _warnings(admin)
    assert len(found) == 2 and "named 'acme okta'" in found[1]
    with rt.db.transaction() as db:
        row = db.get_one(SsoConnection, two.labs.connection_id)
        activation.deactivate(db, Actor.system(), Principal.operator(), row)
    assert _warnings(admin) == []
