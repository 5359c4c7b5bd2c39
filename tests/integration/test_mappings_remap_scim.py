"""A change of the org's role mappings reaches the members the IdP provisions by
SCIM at once (their roles follow their SCIM groups' names), not at their next
sign-in."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hubgate.access import OrgRole, Principal
from hubgate.audit import Actor
from hubgate.operator import operator_principal
from hubgate.provisioning import mappings, tokens
from hubgate.runtime import Runtime
from hubgate.sso import domains
from hubgate.sso.mappings import RoleRule
from tests.conftest import World
from tests.integration.sso_world import role_of

SCIM = "application/scim+json"


def test_new_role_mappings_apply_to_scim_members_at_once(
    client: TestClient, rt: Runtime, world: World
) -> None:
    org = world.org("acme", world.user("admin@acme.example"))
    with rt.db.transaction() as db:
        found = db.merge(org)
        domains.add(db, rt, Actor.system(), operator_principal(), found, "acme.example")
        domains.verify_by_operator(db, rt, Actor.system(), found, "acme.example")
        _row, secret = tokens.create(db, Actor.system(), Principal.operator(), found, "okta")
    headers = {"authorization": f"Bearer {secret}", "content-type": SCIM}
    user = client.post(
        "/scim/v2/acme/Users", headers=headers,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
              "userName": "ada@acme.example", "emails": [{"value": "ada@acme.example", "primary": True}]},
    )  # fmt: skip
    assert user.status_code == 201, user.text
    group = client.post(
        "/scim/v2/acme/Groups", headers=headers,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
              "displayName": "ml-leads", "members": [{"value": user.json()["id"]}]},
    )  # fmt: skip
    assert group.status_code == 201, group.text
    assert role_of(rt, org, "ada@acme.example") is OrgRole.WRITE  # the default role
    with rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), operator_principal(), db.merge(org),
            [RoleRule("groups", "ml-leads", OrgRole.ADMIN)],
        )  # fmt: skip
    assert role_of(rt, org, "ada@acme.example") is OrgRole.ADMIN
    with rt.db.transaction() as db:
        mappings.set_role_mappings(db, Actor.system(), operator_principal(), db.merge(org), [])
    assert role_of(rt, org, "ada@acme.example") is OrgRole.WRITE  # taken back


def test_a_huge_start_index_is_an_empty_page_not_an_error(
    client: TestClient, rt: Runtime, world: World
) -> None:
    org = world.org("acme", world.user("admin@acme.example"))
    with rt.db.transaction() as db:
        _row, secret = tokens.create(
            db, Actor.system(), Principal.operator(), db.merge(org), "okta"
        )
    headers = {"authorization": f"Bearer {secret}", "content-type": SCIM}
    for path in ("/scim/v2/acme/Users", "/scim/v2/acme/Groups"):
        page = client.get(path, headers=headers, params={"startIndex": 10**30, "count": 10**30})
        assert page.status_code == 200 and page.json()["Resources"] == []
    search = client.post(
        "/scim/v2/acme/Users/.search", headers=headers,
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
              "startIndex": 10**30},
    )  # fmt: skip
    assert search.status_code == 200 and search.json()["Resources"] == [], search.text


def test_a_caller_without_the_token_learns_nothing_about_its_body(
    client: TestClient, world: World
) -> None:
    """The token is checked before the body is read as JSON, on every write."""
    world.org("acme", world.user("admin@acme.example"))
    headers = {"authorization": "Bearer hgscim_nope", "content-type": SCIM}
    for method, path in (
        ("POST", "/scim/v2/acme/Users"), ("PUT", "/scim/v2/acme/Users/x"),
        ("PATCH", "/scim/v2/acme/Groups/x"), ("POST", "/scim/v2/acme/Groups"),
    ):  # fmt: skip
        answer = client.request(method, path, headers=headers, content=b"{not json")
        assert answer.status_code == 401, (method, path, answer.text)
