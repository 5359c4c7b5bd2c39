"""Replays of what Okta and Microsoft Entra ID send to a SCIM 2.0 app, in the order
their provisioning documentation describes: create, get by filter, update,
deactivate, reactivate, group push, members added and removed in bulk.

The bodies are in ``scim_fixtures/`` (one file per vendor, named after its
guide); their quirks are kept: Okta's ``replace`` without a path whose value is
``{"active": false}``, its group rename carrying the group's own ``id``, its PUT
carrying ``id``, ``groups`` and ``meta``; Entra's capitalized ops, ``"False"`` as
a string, ``meta`` in creation bodies, the ADSCIM group schema, and ``members``
removed by value list or by value filter path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.db.models import Membership, ScimGroupMember
from hubgate.runtime import Runtime
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, sso_org
from tests.integration.test_scim import ENTERPRISE, PATCH_OP, Scim, refused, scim_for, user_body

FIXTURES = Path(__file__).parent / "scim_fixtures"


def fixture(vendor: str, name: str, **values: Any) -> Any:
    """A body from the vendor's file, with ``"{name}"`` placeholders filled in."""
    body = json.loads((FIXTURES / f"{vendor}.json").read_text())[name]
    return _fill(body, values)


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if (
        isinstance(node, str)
        and node.startswith("{")
        and node.endswith("}")
        and node[1:-1] in values
    ):
        return values[node[1:-1]]
    if isinstance(node, str):
        for key, value in values.items():
            if isinstance(value, str):
                node = node.replace("{" + key + "}", value)
    return node


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def scim(rt: Runtime, client: TestClient, acme: SsoOrg) -> Scim:
    return scim_for(rt, client, "acme")


def ok(answer: Any, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json() if answer.content else {}
    return body


def _deactivated(rt: Runtime, scim_id: str) -> bool:
    from hubgate.db.models import ScimUser

    with rt.db.transaction() as db:
        row = db.get_one(ScimUser, scim_id)
        member = db.scalars(select(Membership).where(Membership.user_id == row.user_id)).one()
        return member.deactivated_at is not None


def _members(rt: Runtime, group_id: str) -> set[str]:
    with rt.db.transaction() as db:
        statement = select(ScimGroupMember.scim_user_id).where(ScimGroupMember.group_id == group_id)
        return set(db.scalars(statement))


def _people(scim: Scim, count: int, prefix: str) -> list[str]:
    return [scim.create_user(f"{prefix}{i}@acme.example")["id"] for i in range(count)]


# -- Okta --------------------------------------------------------------------------


def test_okta_user_lifecycle(scim: Scim, rt: Runtime) -> None:
    missing = ok(
        scim.call(
            "GET", '/Users?filter=userName eq "test.user@acme.example"&startIndex=1&count=100'
        )
    )
    assert missing["totalResults"] == 0 and missing["Resources"] == []
    created = ok(
        scim.call("POST", "/Users", fixture("okta_scim20_provisioning", "create_user")), 201
    )
    uid = created["id"]
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7" and "password" not in created
    found = ok(
        scim.call(
            "GET", '/Users?filter=userName eq "TEST.USER@acme.example"&startIndex=1&count=100'
        )
    )
    assert [r["id"] for r in found["Resources"]] == [uid]

    put = fixture("okta_scim20_provisioning", "update_user_put", user_id=uid)
    updated = ok(scim.call("PUT", f"/Users/{uid}", put))
    assert updated["name"]["givenName"] == "Another" and updated["displayName"] == "Another User"

    off = ok(
        scim.call("PATCH", f"/Users/{uid}", fixture("okta_scim20_provisioning", "deactivate_user"))
    )
    assert off["active"] is False and _deactivated(rt, uid)
    on = ok(
        scim.call("PATCH", f"/Users/{uid}", fixture("okta_scim20_provisioning", "reactivate_user"))
    )
    assert on["active"] is True and not _deactivated(rt, uid)


def test_okta_group_push(scim: Scim, rt: Runtime) -> None:
    people = _people(scim, 5, "okta")
    group = ok(scim.call("POST", "/Groups", fixture("okta_scim20_provisioning", "push_group")), 201)
    gid = group["id"]
    found = ok(
        scim.call("GET", '/Groups?filter=displayName eq "Test SCIMv2"&startIndex=1&count=100')
    )
    assert [g["id"] for g in found["Resources"]] == [gid]
    renamed = fixture("okta_scim20_provisioning", "rename_group", group_id=gid)
    assert ok(scim.call("PATCH", f"/Groups/{gid}", renamed))["displayName"] == "Test SCIMv2 renamed"

    members = [{"value": p, "display": f"okta{i}@acme.example"} for i, p in enumerate(people)]
    add = fixture("okta_scim20_provisioning", "add_members", members=members)
    ok(scim.call("PATCH", f"/Groups/{gid}", add))
    assert _members(rt, gid) == set(people)
    for person in people[:3]:
        remove = fixture("okta_scim20_provisioning", "remove_member", user_id=person)
        ok(scim.call("PATCH", f"/Groups/{gid}", remove))
    assert _members(rt, gid) == set(people[3:])
    ok(scim.call("DELETE", f"/Groups/{gid}"), 204)


# -- Entra ID -------------------------------------------------------------------------


def test_entra_user_lifecycle(scim: Scim, rt: Runtime) -> None:
    body = fixture("entra_scim_provisioning", "create_user")
    created = ok(scim.call("POST", "/Users", body), 201)
    uid = created["id"]
    enterprise = created["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert enterprise["department"] == "Research" and "roles" not in created
    by_name = ok(scim.call("GET", f'/Users?filter=userName eq "{body["userName"]}"'))
    assert [r["id"] for r in by_name["Resources"]] == [uid]
    by_external = ok(scim.call("GET", f'/Users?filter=externalId eq "{body["externalId"]}"'))
    assert [r["id"] for r in by_external["Resources"]] == [uid]
    nobody = ok(scim.call("GET", '/Users?filter=userName eq "non-existent user"'))
    assert nobody["totalResults"] == 0

    updated = ok(
        scim.call("PATCH", f"/Users/{uid}", fixture("entra_scim_provisioning", "update_user"))
    )
    assert updated["emails"][0]["value"] == "updatedEmail@acme.example"
    assert (
        updated["name"]["familyName"] == "updatedFamilyName"
        and updated["displayName"] == "Updated Name"
    )

    off = ok(
        scim.call("PATCH", f"/Users/{uid}", fixture("entra_scim_provisioning", "disable_user"))
    )
    assert off["active"] is False and _deactivated(rt, uid)
    on = ok(scim.call("PATCH", f"/Users/{uid}", fixture("entra_scim_provisioning", "enable_user")))
    assert on["active"] is True and not _deactivated(rt, uid)
    ok(scim.call("DELETE", f"/Users/{uid}"), 204)
    assert scim.call("GET", f"/Users/{uid}").status_code == 404


def test_entra_names_the_manager_by_id_alone(scim: Scim) -> None:
    """Entra sends the enterprise ``manager`` without the ``$ref`` RFC 7643 §4.3
    requires, in POST as ``{"value": id}`` and in PATCH as the bare id."""
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    boss = scim.create_user("boss@acme.example")["id"]
    other = scim.create_user("other@acme.example")["id"]
    body = fixture("entra_scim_provisioning", "create_report", manager_id=boss)
    created = ok(scim.call("POST", "/Users", body), 201)
    assert created[enterprise]["manager"]["value"] == boss
    assert created[enterprise]["manager"]["$ref"] == f"../Users/{boss}"
    uid = created["id"]

    patch = fixture("entra_scim_provisioning", "set_manager", manager_id=other)
    moved = ok(scim.call("PATCH", f"/Users/{uid}", patch))
    assert moved[enterprise]["manager"]["value"] == other
    assert ok(scim.call("GET", f"/Users/{uid}"))[enterprise]["manager"]["value"] == other
    cleared = ok(
        scim.call("PATCH", f"/Users/{uid}", fixture("entra_scim_provisioning", "remove_manager"))
    )
    assert "manager" not in cleared.get(enterprise, {})
    assert cleared[enterprise]["department"] == "Research"

    wrong = {"op": "Add", "path": f"{enterprise}:manager", "value": 42}
    refused = scim.call(
        "PATCH", f"/Users/{uid}", {"schemas": patch["schemas"], "Operations": [wrong]}
    )
    assert refused.status_code == 400, refused.text
    assert "manager" not in ok(scim.call("GET", f"/Users/{uid}")).get(enterprise, {})


def test_entra_group_push(scim: Scim, rt: Runtime) -> None:
    people = _people(scim, 6, "entra")
    group = ok(
        scim.call("POST", "/Groups", fixture("entra_scim_provisioning", "create_group")), 201
    )
    gid = group["id"]
    by_external = ok(
        scim.call(
            "GET",
            '/Groups?filter=externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"&excludedAttributes=members',
        )
    )
    assert [g["id"] for g in by_external["Resources"]] == [gid]
    assert "members" not in by_external["Resources"][0]

    members = [{"$ref": None, "value": p} for p in people]
    ok(
        scim.call(
            "PATCH",
            f"/Groups/{gid}",
            fixture("entra_scim_provisioning", "add_members", members=members),
        )
    )
    assert _members(rt, gid) == set(people)
    two = [{"$ref": None, "value": p} for p in people[:2]]
    ok(
        scim.call(
            "PATCH",
            f"/Groups/{gid}",
            fixture("entra_scim_provisioning", "remove_members", members=two),
        )
    )
    assert _members(rt, gid) == set(people[2:])
    by_filter = fixture("entra_scim_provisioning", "remove_member_by_filter", user_id=people[2])
    ok(scim.call("PATCH", f"/Groups/{gid}", by_filter))
    assert _members(rt, gid) == set(people[3:])
    member_check = ok(
        scim.call(
            "GET",
            f'/Groups?filter=id eq "{gid}" and members[value eq "{people[3]}"]&excludedAttributes=members',
        )
    )
    assert member_check["totalResults"] == 1
    renamed = ok(
        scim.call("PATCH", f"/Groups/{gid}", fixture("entra_scim_provisioning", "rename_group"))
    )
    assert renamed["displayName"].endswith("updatedDisplayName")
    ok(scim.call("DELETE", f"/Groups/{gid}"), 204)


def _without_emails(email: str) -> dict[str, Any]:
    """A User whose address is its userName alone (Entra maps ``mail`` separately)."""
    return {k: v for k, v in user_body(email).items() if k != "emails"}


def test_entra_replaces_with_a_value_object_keyed_by_paths(scim: Scim, rt: Runtime) -> None:
    """One ``Replace`` without a path whose value is keyed by attribute paths, a
    value filter among them, and a boolean as a string: each key is applied as
    its own operation (RFC 7644 §3.5.2.3 keys it by attribute names)."""
    uid = scim.create_user("ada@acme.example")["id"]
    body = fixture(
        "entra_scim_provisioning", "update_user_by_value_object",
        email="u@acme.example", given_name="G",
    )  # fmt: skip
    updated = ok(scim.call("PATCH", f"/Users/{uid}", body))
    assert [(e["type"], e["value"]) for e in updated["emails"]] == [("work", "u@acme.example")]
    assert updated["name"]["givenName"] == "G" and updated["name"]["familyName"] == "acme"
    assert updated[ENTERPRISE]["department"] == "Platform"
    assert updated["active"] is False and _deactivated(rt, uid)
    found = ok(scim.call("GET", '/Users?filter=emails.value eq "u@acme.example"'))
    assert [r["id"] for r in found["Resources"]] == [uid]


def test_entra_adds_a_work_email_to_a_user_with_none(scim: Scim) -> None:
    """``Add`` on ``emails[type eq "work"].value`` with no work email creates it
    (RFC 7644 §3.5.2.1: a target that does not exist is added)."""
    uid = ok(scim.call("POST", "/Users", _without_emails("bea@acme.example")), 201)["id"]
    body = fixture("entra_scim_provisioning", "add_work_email", email="bea.b@acme.example")
    added = ok(scim.call("PATCH", f"/Users/{uid}", body))
    assert added["emails"] == [{"type": "work", "value": "bea.b@acme.example"}]
    found = ok(
        scim.call("GET", '/Users?filter=emails[type eq "work" and value eq "bea.b@acme.example"]')
    )
    assert [r["id"] for r in found["Resources"]] == [uid]


def test_entra_replaces_a_work_email_no_value_matches_yet(scim: Scim) -> None:
    """Entra sends ``Replace`` to set the first work email too: the value its
    filter describes is created (:data:`hubgate.scim.patch._ENTRA` says why), and
    the other emails stay."""
    home = {"value": "cy@acme.example", "type": "home", "primary": True}
    uid = scim.create_user("cy@acme.example", emails=[home])["id"]
    body = fixture("entra_scim_provisioning", "replace_work_email", email="cy.w@acme.example")
    replaced = ok(scim.call("PATCH", f"/Users/{uid}", body))
    assert replaced["emails"] == [home, {"type": "work", "value": "cy.w@acme.example"}]
    again = fixture("entra_scim_provisioning", "replace_work_email", email="cy.c@acme.example")
    emails = ok(scim.call("PATCH", f"/Users/{uid}", again))["emails"]
    assert emails == [home, {"type": "work", "value": "cy.c@acme.example"}]


def test_entra_capitalises_ops_and_sends_booleans_as_strings(scim: Scim, rt: Runtime) -> None:
    uid = scim.create_user("dee@acme.example")["id"]
    for op, value, active in (("Replace", "False", False), ("Add", "True", True)):
        body = {"schemas": [PATCH_OP], "Operations": [{"op": op, "value": {"active": value}}]}
        assert ok(scim.call("PATCH", f"/Users/{uid}", body))["active"] is active
        assert _deactivated(rt, uid) is not active
    refused(scim.patch(f"/Users/{uid}", {"op": "Replace", "path": "active", "value": "maybe"}),
            400, "invalidValue")  # fmt: skip
    assert ok(scim.call("GET", f"/Users/{uid}"))["active"] is True
