"""SCIM 2.0 over HTTP, in-process (RFC 7643, RFC 7644): CRUD, tenant isolation,
mass assignment, deprovisioning checked through ``/auth/check`` and the API,
If-Match, limits, filter injection, PATCH path abuse, and Group -> team links.

Each refusal is checked twice: the SCIM Error it answers (status and
``scimType``), and that nothing else changed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from hubgate.access import OrgRole, Principal, TeamRole, Visibility
from hubgate.accounts import tokens as personal_tokens
from hubgate.accounts import users
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import (
    AuditEvent,
    Membership,
    ScimGroup,
    ScimGroupMember,
    ScimUser,
    Team,
    TeamMembership,
    Token,
    User,
    WebSession,
)
from hubgate.operator import operator_principal
from hubgate.orgs import service
from hubgate.provisioning import groups, tokens
from hubgate.provisioning.queries import MAX_COUNT
from hubgate.runtime import Runtime
from tests.conftest import World, on_event_loop, sign_in
from tests.integration.sso_world import SsoOrg, count, person, role_of, sso_org

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MEDIA = "application/scim+json"


@dataclass
class Scim:
    """One org's SCIM endpoints, called with its bearer token."""

    client: TestClient
    org: str
    secret: str

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        sent = {"authorization": f"Bearer {self.secret}", "content-type": MEDIA, **headers}
        content = None if body is None else json.dumps(body)
        return self.client.request(
            method, f"/scim/v2/{self.org}{path}", content=content, headers=sent
        )

    def create_user(self, email: str, **extra: Any) -> dict[str, Any]:
        answer = self.call("POST", "/Users", user_body(email, **extra))
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def create_group(self, name: str, *member_ids: str) -> dict[str, Any]:
        body = {
            "schemas": [GROUP],
            "displayName": name,
            "members": [{"value": m} for m in member_ids],
        }
        answer = self.call("POST", "/Groups", body)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def patch(self, path: str, *operations: dict[str, Any], **headers: str) -> httpx.Response:
        return self.call(
            "PATCH", path, {"schemas": [PATCH_OP], "Operations": list(operations)}, **headers
        )

    def user_names(self, filter_text: str | None = None) -> list[str]:
        answer = self.call("GET", "/Users" + (f"?filter={filter_text}" if filter_text else ""))
        assert answer.status_code == 200, answer.text
        return [r["userName"] for r in answer.json()["Resources"]]


def user_body(email: str, **extra: Any) -> dict[str, Any]:
    given, _, domain = email.partition("@")
    return {
        "schemas": [USER], "userName": email, "active": True,
        "name": {"givenName": given.capitalize(), "familyName": domain.split(".")[0]},
        "emails": [{"value": email, "type": "work", "primary": True}],
        **extra,
    }  # fmt: skip


def refused(answer: httpx.Response, status: int, scim_type: str | None = None) -> None:
    """A SCIM Error document with that status and scimType (RFC 7644 §3.12)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(MEDIA)
    body = answer.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status), body
    assert body.get("scimType") == scim_type, body


def scim_for(rt: Runtime, client: TestClient, org_name: str) -> Scim:
    with rt.db.transaction() as db:
        _, secret = tokens.create(
            db, Actor.system(), Principal.operator(), service.get_org(db, org_name), "idp"
        )
    return Scim(client, org_name, secret)


def snapshot(rt: Runtime) -> tuple[int, ...]:
    """Rows a refused SCIM call must not have touched."""
    models = (User, Membership, TeamMembership, ScimUser, ScimGroup, ScimGroupMember, Token)
    return tuple(count(rt, model) for model in models)


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def scim(rt: Runtime, client: TestClient, acme: SsoOrg) -> Scim:
    return scim_for(rt, client, "acme")


@pytest.fixture
def globex(rt: Runtime, client: TestClient, world: World) -> Scim:
    sso_org(rt, world, "globex", "globex.example")
    return scim_for(rt, client, "globex")


# -- CRUD --------------------------------------------------------------------------


def test_user_lifecycle(scim: Scim, rt: Runtime) -> None:
    created = scim.create_user("ada@acme.example", externalId="00u1", displayName="Ada L")
    uid = created["id"]
    assert created["userName"] == "ada@acme.example" and created["active"] is True
    assert created["meta"]["resourceType"] == "User" and created["meta"]["version"] == 'W/"1"'
    fetched = scim.call("GET", f"/Users/{uid}")
    assert fetched.status_code == 200 and fetched.headers["etag"] == 'W/"1"'
    assert fetched.json()["externalId"] == "00u1"
    assert scim.user_names('userName eq "ADA@acme.example"') == ["ada@acme.example"]

    replaced = scim.call("PUT", f"/Users/{uid}", user_body("ada@acme.example", displayName="Ada"))
    assert replaced.status_code == 200 and replaced.json()["displayName"] == "Ada"
    assert replaced.headers["etag"] == 'W/"2"'
    patched = scim.patch(f"/Users/{uid}", {"op": "replace", "path": "name.givenName", "value": "A"})
    assert patched.status_code == 200 and patched.json()["name"]["givenName"] == "A"

    assert scim.call("DELETE", f"/Users/{uid}").status_code == 204
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        refused(
            scim.call(
                method,
                f"/Users/{uid}",
                body
                if method == "PATCH"
                else user_body("ada@acme.example")
                if method == "PUT"
                else None,
            ),
            404,
        )
    assert role_of(rt, scim_org(rt), "ada@acme.example") is None
    again = scim.create_user("ada@acme.example")
    assert again["id"] != uid


def scim_org(rt: Runtime) -> Any:
    with rt.db.transaction() as db:
        return service.get_org(db, "acme")


def test_group_lifecycle(scim: Scim) -> None:
    ada = scim.create_user("ada@acme.example")["id"]
    bob = scim.create_user("bob@acme.example")["id"]
    group = scim.create_group("Engineering", ada)
    gid = group["id"]
    assert [m["value"] for m in group["members"]] == [ada]
    assert group["members"][0]["type"] == "User"
    patched = scim.patch(
        f"/Groups/{gid}",
        {"op": "add", "path": "members", "value": [{"value": bob}]},
        {"op": "replace", "path": "displayName", "value": "Eng"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "Eng"
    assert sorted(m["value"] for m in patched.json()["members"]) == sorted([ada, bob])
    removed = scim.patch(f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{ada}"]'})
    assert [m["value"] for m in removed.json()["members"]] == [bob]
    put = scim.call(
        "PUT", f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Eng", "members": []}
    )
    assert put.status_code == 200 and "members" not in put.json()
    listed = scim.call("GET", '/Groups?filter=displayName eq "eng"').json()
    assert [g["id"] for g in listed["Resources"]] == [gid]
    assert scim.call("DELETE", f"/Groups/{gid}").status_code == 204
    refused(scim.call("GET", f"/Groups/{gid}"), 404)
    refused(
        scim.call(
            "POST",
            "/Groups",
            {"schemas": [GROUP], "displayName": "x", "members": [{"value": "nope"}]},
        ),
        400,
        "invalidValue",
    )


def test_search_endpoints(scim: Scim) -> None:
    scim.create_user("ada@acme.example")
    scim.create_group("Engineering")
    body = {"schemas": [SEARCH], "filter": 'userName sw "ada"', "attributes": ["userName"]}
    found = scim.call("POST", "/Users/.search", body).json()
    assert found["totalResults"] == 1 and set(found["Resources"][0]) == {
        "schemas",
        "id",
        "userName",
    }
    everything = scim.call("POST", "/.search", {"schemas": [SEARCH]}).json()
    assert everything["totalResults"] == 2 + 0  # ada and the group (the admin is no SCIM User)
    named = scim.call(
        "POST", "/.search", {"schemas": [SEARCH], "filter": 'displayName eq "Engineering"'}
    )
    assert [r["displayName"] for r in named.json()["Resources"]] == ["Engineering"]
    refused(
        scim.call("POST", "/Groups/.search", {"schemas": [SEARCH], "filter": "password eq 1"}),
        400,
        "invalidFilter",
    )


def test_lists_and_searches_show_each_users_own_groups(scim: Scim) -> None:
    ada, bob, cy = (scim.create_user(f"{n}@acme.example")["id"] for n in ("ada", "bob", "cy"))
    eng = scim.create_group("Engineering", ada, bob)["id"]
    ops = scim.create_group("Ops", bob)["id"]
    want = {ada: [eng], bob: [eng, ops], cy: []}

    def groups(resources: list[dict[str, Any]]) -> dict[str, list[str]]:
        users = [r for r in resources if "userName" in r]
        return {u["id"]: [g["value"] for g in u.get("groups", [])] for u in users}

    assert groups(scim.call("GET", "/Users").json()["Resources"]) == want
    body = {"schemas": [SEARCH], "filter": 'userName ew "acme.example"'}
    assert groups(scim.call("POST", "/Users/.search", body).json()["Resources"]) == want
    assert groups(scim.call("POST", "/.search", {"schemas": [SEARCH]}).json()["Resources"]) == want
    assert groups([scim.call("GET", f"/Users/{bob}").json()]) == {bob: [eng, ops]}


def test_a_page_of_users_counts_users_not_their_groups(scim: Scim) -> None:
    """A list reads its Users' groups in the page's own query: the page is chosen
    before the groups are joined, so a User in three groups is one entry with all
    three, and the page keeps its sortBy order."""
    ids = {n: scim.create_user(f"{n}@acme.example")["id"] for n in ("ada", "bob", "cy", "dee")}
    made = [scim.create_group(f"G{k}", ids["bob"], ids["cy"])["id"] for k in range(3)]
    query = "sortBy=userName&sortOrder=descending&startIndex=2&count=2"
    listed = scim.call("GET", f"/Users?{query}").json()
    assert listed["totalResults"] == 4 and listed["itemsPerPage"] == 2
    assert [r["userName"] for r in listed["Resources"]] == ["cy@acme.example", "bob@acme.example"]
    assert [[g["value"] for g in r["groups"]] for r in listed["Resources"]] == [made, made]


@pytest.mark.parametrize(
    ("start", "count", "shown"),
    [(1, 100, 3), (1, 2, 2), (2, 10, 2), (3, 1, 1), (4, 10, 0), (9, 10, 0), (1, 0, 0)],
)
def test_list_pages_keep_the_total_whatever_page_is_asked(
    scim: Scim, start: int, count: int, shown: int
) -> None:
    for name in ("ada", "bob", "cy"):
        scim.create_user(f"{name}@acme.example")
    listed = scim.call("GET", f"/Users?startIndex={start}&count={count}").json()
    assert listed["totalResults"] == 3
    assert len(listed.get("Resources", [])) == listed["itemsPerPage"] == shown
    assert listed["startIndex"] == start


def test_root_search_filters_may_name_what_only_users_or_only_groups_have(scim: Scim) -> None:
    """RFC 7644 §3.4.3: at the root, a comparison on an attribute a resource type
    lacks is false for it, so one filter selects from both types."""
    ada = scim.create_user("ada@acme.example")["id"]
    scim.create_user("bob@acme.example")
    scim.create_group("Engineering", ada)
    scim.create_group("Empty")

    def names(text: str) -> list[str]:
        answer = scim.call("POST", "/.search", {"schemas": [SEARCH], "filter": text})
        assert answer.status_code == 200, answer.text
        return sorted(r.get("userName") or r["displayName"] for r in answer.json()["Resources"])

    assert names('userName sw "ada" or members pr') == ["Engineering", "ada@acme.example"]
    assert names(f'members[value eq "{ada}"] or userName eq "bob@acme.example"') == [
        "Engineering",
        "bob@acme.example",
    ]
    assert names("userName pr and members pr") == []
    assert names('not (members pr) and displayName sw "E"') == ["Empty"]
    group_urn = "urn:ietf:params:scim:schemas:core:2.0:Group"
    assert names(f'{group_urn}:displayName eq "Empty" or emails pr') == [
        "Empty",
        "ada@acme.example",
        "bob@acme.example",
    ]
    for unknown in (
        'nosuch eq "x" or members pr',
        'members pr or password eq "x"',
        f'{group_urn}:nosuch eq "x" or userName pr',
    ):
        refused(
            scim.call("POST", "/.search", {"schemas": [SEARCH], "filter": unknown}),
            400,
            "invalidFilter",
        )
    refused(scim.call("GET", "/Users?filter=members%20pr"), 400, "invalidFilter")


# -- tenant isolation ----------------------------------------------------------------


def test_another_orgs_token_answers_401(scim: Scim, globex: Scim, rt: Runtime) -> None:
    uid = scim.create_user("ada@acme.example")["id"]
    intruder = Scim(scim.client, "acme", globex.secret)
    before = snapshot(rt)
    for method, path in [("GET", "/Users"), ("GET", f"/Users/{uid}"), ("DELETE", f"/Users/{uid}"),
                         ("POST", "/Users"), ("GET", "/ServiceProviderConfig"), ("POST", "/.search")]:  # fmt: skip
        refused(
            intruder.call(
                method, path, user_body("eve@acme.example") if method == "POST" else None
            ),
            401,
        )
    refused(Scim(scim.client, "acme", "hgscim_" + "x" * 40).call("GET", "/Users"), 401)
    refused(Scim(scim.client, "acme", scim.secret + "x").call("GET", "/Users"), 401)
    assert snapshot(rt) == before


def test_another_orgs_ids_answer_404_and_lists_never_show_them(
    scim: Scim, globex: Scim, rt: Runtime
) -> None:
    uid = scim.create_user("ada@acme.example")["id"]
    gid = scim.create_group("Engineering", uid)["id"]
    before = snapshot(rt)
    for path in (f"/Users/{uid}", f"/Groups/{gid}"):
        refused(globex.call("GET", path), 404)
        refused(globex.call("DELETE", path), 404)
        refused(globex.patch(path, {"op": "replace", "path": "externalId", "value": "x"}), 404)
    refused(globex.call("PUT", f"/Users/{uid}", user_body("ada@globex.example")), 404)
    assert globex.user_names() == [] and globex.user_names('userName eq "ada@acme.example"') == []
    assert globex.user_names(f'id eq "{uid}"') == []
    assert globex.call("GET", "/Groups").json()["totalResults"] == 0
    assert globex.call("POST", "/.search", {"schemas": [SEARCH]}).json()["totalResults"] == 0
    assert snapshot(rt) == before


def test_a_user_name_taken_elsewhere_is_neither_touched_nor_revealed(
    scim: Scim, globex: Scim, rt: Runtime
) -> None:
    ada = scim.create_user("ada@acme.example", externalId="acme-1")
    # The same userName in globex is another User there; acme's stays as it was.
    twin = globex.create_user("ada@globex.example", userName="ada@acme.example")
    assert twin["id"] != ada["id"]
    assert scim.call("GET", f"/Users/{ada['id']}").json()["externalId"] == "acme-1"
    # An email in acme's domain is refused by globex the same way as an unknown one.
    answers = [
        globex.call("POST", "/Users", user_body(e))
        for e in ("bob@acme.example", "bob@nobody.example")
    ]
    for answer in answers:
        refused(answer, 400, "invalidValue")
    assert answers[0].json()["detail"] == answers[1].json()["detail"]
    assert role_of(rt, scim_org(rt), "ada@acme.example") is not None


def test_group_members_from_another_org_are_refused(scim: Scim, globex: Scim, rt: Runtime) -> None:
    foreign = scim.create_user("ada@acme.example")["id"]
    own = globex.create_user("bob@globex.example")["id"]
    gid = globex.create_group("Staff", own)["id"]
    before = snapshot(rt)
    body = {"schemas": [GROUP], "displayName": "Sneaky", "members": [{"value": foreign}]}
    refused(globex.call("POST", "/Groups", body), 400, "invalidValue")
    refused(
        globex.patch(
            f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": foreign}]}
        ),
        400,
        "invalidValue",
    )
    assert snapshot(rt) == before
    assert [m["value"] for m in globex.call("GET", f"/Groups/{gid}").json()["members"]] == [own]


# -- mass assignment -----------------------------------------------------------------


def test_roles_entitlements_and_admin_flags_change_no_access(scim: Scim, rt: Runtime) -> None:
    grabby = {
        "roles": [{"value": "admin", "primary": True}], "entitlements": [{"value": "org:admin"}],
        "x509Certificates": [{"value": "MIIB"}], "userType": "Administrator",
        "title": "admin", "schemas": [USER, ENTERPRISE],
        ENTERPRISE: {"employeeNumber": "1", "department": "admins"},
    }  # fmt: skip
    uid = scim.create_user("mal@acme.example", **grabby)["id"]
    assert role_of(rt, scim_org(rt), "mal@acme.example").label == "write"  # the default role
    for operation in (
        {"op": "add", "path": "roles", "value": [{"value": "admin"}]},
        {"op": "replace", "path": "entitlements", "value": [{"value": "owner"}]},
        {"op": "replace", "value": {"roles": [{"value": "admin"}], "userType": "Owner"}},
    ):
        answer = scim.patch(f"/Users/{uid}", operation)
        assert answer.status_code == 200, answer.text
        assert "roles" not in answer.json() and "entitlements" not in answer.json()
    put = scim.call(
        "PUT", f"/Users/{uid}", user_body("mal@acme.example", roles=[{"value": "admin"}])
    )
    assert put.status_code == 200 and "roles" not in put.json()
    assert role_of(rt, scim_org(rt), "mal@acme.example").label == "write"
    with rt.db.transaction() as db:
        teams = db.scalars(select(TeamMembership.role)).all()
    assert "admin" not in teams


# -- deprovisioning ------------------------------------------------------------------


def _check(client: TestClient, uri: str, **headers: str) -> int:
    answer = client.get(
        "/auth/check", headers={"x-original-uri": uri, "x-original-method": "GET", **headers}
    )
    return answer.status_code


def _deactivate(scim: Scim, uid: str) -> None:
    """Okta's documented form: replace without a path, ``{"active": false}``."""
    answer = scim.patch(f"/Users/{uid}", {"op": "replace", "value": {"active": False}})
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text


def _token(rt: Runtime, email: str) -> str:
    with rt.db.transaction() as db:
        user = users.find_by_email(db, email)
        assert user is not None
        new = personal_tokens.create_personal(
            db, Actor.system(), user.id, "cli", ["read"], None, rt.now()
        )
        return new.secret


def test_deactivation_cuts_a_password_session_and_a_token_at_once(
    rt: Runtime, world: World, acme: SsoOrg, scim: Scim
) -> None:
    acme.resource("weights", Visibility.PRIVATE)
    bob = world.user("bob@acme.example")
    world.member(acme.org, bob, OrgRole.READ)
    uid = scim.create_user("bob@acme.example")["id"]  # links the existing account
    browser = TestClient(create_app(runtime=rt))
    sign_in(browser, "bob@acme.example")
    bearer = {"authorization": f"Bearer {_token(rt, 'bob@acme.example')}"}
    assert _check(browser, "/acme/models/weights") == 200
    assert _check(browser, "/acme/models/weights", **bearer) == 200
    assert browser.get("/api/v1/orgs/acme/members").status_code == 200

    _deactivate(scim, uid)
    assert _check(browser, "/acme/models/weights") in (401, 403)
    assert _check(browser, "/acme/models/weights", **bearer) in (401, 403)
    assert browser.get("/api/v1/orgs/acme/members").status_code in (403, 404)
    assert browser.get("/api/v1/orgs/acme/members", headers=bearer).status_code in (403, 404)

    reactivated = scim.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": True})
    assert reactivated.json()["active"] is True
    assert _check(browser, "/acme/models/weights", **bearer) == 200  # not org-managed: kept
    assert role_of(rt, acme.org, "bob@acme.example") == OrgRole.READ


def test_deactivation_ends_a_managed_members_sso_session_and_tokens_for_good(
    rt: Runtime, acme: SsoOrg, scim: Scim
) -> None:
    acme.set_mode("managed")
    acme.resource("weights", Visibility.PRIVATE)
    with rt.db.transaction() as db:
        org = db.merge(acme.org)
        team = service.create_team(db, Actor.system(), operator_principal(), org, "research", None)
        team_id = team.id
    uid = scim.create_user("ada@acme.example")["id"]  # SCIM creates the managed account
    gid = scim.create_group("ml", uid)["id"]
    with rt.db.transaction() as db:
        org = db.merge(acme.org)
        links = [("research", TeamRole.WRITE)]
        groups.link_teams(db, Actor.system(), operator_principal(), org, gid, links)
    browser = TestClient(create_app(runtime=rt))
    assert acme.sign_in(browser, **person("ada@acme.example"))["status"] == 200
    bearer = {"authorization": f"Bearer {_token(rt, 'ada@acme.example')}"}
    assert _check(browser, "/acme/models/weights") == 200
    assert _check(TestClient(create_app(runtime=rt)), "/acme/models/weights", **bearer) == 200

    _deactivate(scim, uid)
    assert _check(browser, "/acme/models/weights") == 401
    assert _check(TestClient(create_app(runtime=rt)), "/acme/models/weights", **bearer) == 401
    assert browser.get("/api/v1/me").status_code == 401
    with rt.db.transaction() as db:
        user = users.find_by_email(db, "ada@acme.example")
        assert user is not None and user.managed_by_org_id == acme.org.id
        assert db.scalar(select(WebSession.id).where(WebSession.user_id == user.id)) is None
    later = acme.sign_in(TestClient(create_app(runtime=rt)), **person("ada@acme.example"))
    assert later["status"] == 403, later

    scim.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": True})
    assert role_of(rt, acme.org, "ada@acme.example").label == "write"
    with rt.db.transaction() as db:
        places = db.scalars(
            select(TeamMembership.role).where(TeamMembership.team_id == team_id)
        ).all()
    assert places == ["write"]
    assert _check(TestClient(create_app(runtime=rt)), "/acme/models/weights", **bearer) == 401
    again = TestClient(create_app(runtime=rt))
    assert acme.sign_in(again, **person("ada@acme.example"))["status"] == 200
    assert _check(again, "/acme/models/weights") == 200


def test_delete_removes_the_managed_account(rt: Runtime, acme: SsoOrg, scim: Scim) -> None:
    acme.set_mode("managed")
    uid = scim.create_user("ada@acme.example")["id"]
    assert scim.call("DELETE", f"/Users/{uid}").status_code == 204
    with rt.db.transaction() as db:
        assert users.find_by_email(db, "ada@acme.example") is None
        actions = [
            e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.org_id == acme.org.id))
        ]
    assert "scim.user_deleted" in actions
    refused(scim.call("GET", f"/Users/{uid}"), 404)
    scim.create_user("ada@acme.example")


# -- If-Match, limits ----------------------------------------------------------------


def test_if_match_mismatch_answers_412_and_changes_nothing(scim: Scim) -> None:
    uid = scim.create_user("ada@acme.example", displayName="Ada")["id"]
    stale = {"if-match": 'W/"7"'}
    refused(
        scim.call("PUT", f"/Users/{uid}", user_body("ada@acme.example", displayName="X"), **stale),
        412,
    )
    refused(
        scim.patch(
            f"/Users/{uid}", {"op": "replace", "path": "displayName", "value": "X"}, **stale
        ),
        412,
    )
    current = scim.call("GET", f"/Users/{uid}")
    assert current.json()["displayName"] == "Ada" and current.headers["etag"] == 'W/"1"'
    fresh = scim.patch(
        f"/Users/{uid}",
        {"op": "replace", "path": "displayName", "value": "Y"},
        **{"if-match": 'W/"1"'},
    )
    assert fresh.status_code == 200 and fresh.headers["etag"] == 'W/"2"'
    gid = scim.create_group("Eng")["id"]
    refused(
        scim.patch(
            f"/Groups/{gid}", {"op": "replace", "path": "displayName", "value": "X"}, **stale
        ),
        412,
    )


def test_an_oversized_body_answers_413_as_a_scim_error(scim: Scim, rt: Runtime) -> None:
    before = snapshot(rt)
    huge = user_body("ada@acme.example", displayName="x" * (1024 * 1024 + 10))
    refused(scim.call("POST", "/Users", huge), 413)
    assert snapshot(rt) == before


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"text"', b"null", b'{"schemas": 5}', b"\xff\xfe"],
    ids=["garbage", "array", "string", "null", "bad-schemas", "bad-utf8"],
)
def test_malformed_bodies_are_refused_without_change(scim: Scim, rt: Runtime, body: bytes) -> None:
    before = snapshot(rt)
    headers = {"authorization": f"Bearer {scim.secret}", "content-type": MEDIA}
    for method, path in (("POST", "/Users"), ("POST", "/Groups"), ("POST", "/.search")):
        answer = scim.client.request(method, f"/scim/v2/acme{path}", content=body, headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["schemas"] == [ERROR]
    assert snapshot(rt) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/Users", user_body("cy@acme.example")),
        ("PUT", "/Users/{uid}", user_body("ada@acme.example", displayName="Ada L.")),
        ("PATCH", "/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Ada"}]}),
        ("POST", "/Groups", {"schemas": [GROUP], "displayName": "Ops"}),
        ("PUT", "/Groups/{gid}", {"schemas": [GROUP], "displayName": "Eng"}),
        ("PATCH", "/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": "{uid}"}]}]}),
        ("POST", "/.search", {"schemas": [SEARCH]}),
        ("POST", "/Users/.search", {"schemas": [SEARCH]}),
        ("POST", "/Groups/.search", {"schemas": [SEARCH]}),
        ("GET", "/Users?filter=userName eq \"ada@acme.example\"", None),
        ("DELETE", "/Groups/{gid}", None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_scim_transactions_run_off_the_event_loop(
    scim: Scim, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any
) -> None:
    """A route that ran its transaction on the event loop would stall every other
    request of the worker for as long as, say, a 10,000-member PATCH takes."""
    uid = scim.create_user("ada@acme.example")["id"]
    gid = scim.create_group("Eng")["id"]
    resolve, seen = tokens.resolve, []

    def spy(*args: Any) -> Any:
        seen.append(on_event_loop())
        return resolve(*args)

    monkeypatch.setattr(tokens, "resolve", spy)

    def filled(text: str) -> str:
        return text.replace("{uid}", uid).replace("{gid}", gid)

    sent = None if body is None else json.loads(filled(json.dumps(body)))
    answer = scim.call(method, filled(path), sent)
    assert answer.status_code < 300, answer.text
    assert seen == [False]


def seed_users(rt: Runtime, org_name: str, number: int) -> None:
    """``number`` SCIM Users of the org (each with its account), in one transaction
    through Core: enough to show a page cap costs no thousand SCIM calls."""
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        accounts = insert(User).returning(User.id, sort_by_parameter_order=True)
        ids = db.scalars(accounts, [{"display_name": f"User {i}"} for i in range(number)]).all()
        rows = [
            {"id": str(uuid.uuid4()), "org_id": org.id, "user_id": user_id,
             "user_name": f"u{i}@acme.example", "user_name_key": f"u{i}@acme.example"}
            for i, user_id in enumerate(ids)
        ]  # fmt: skip
        db.execute(insert(ScimUser), rows)


def test_service_provider_config_announces_the_limits_and_pages_keep_them(
    scim: Scim, rt: Runtime
) -> None:
    config = scim.call("GET", "/ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["etag"]["supported"]
    assert config["bulk"]["supported"] is False
    assert config["filter"]["maxResults"] == MAX_COUNT == 1000
    seed_users(rt, "acme", MAX_COUNT + 1)
    listed = scim.call("GET", "/Users?count=100000").json()
    searched = scim.call("POST", "/Users/.search", {"schemas": [SEARCH], "count": 100000}).json()
    for page in (listed, searched):
        assert page["totalResults"] == MAX_COUNT + 1
        assert page["itemsPerPage"] == len(page["Resources"]) == MAX_COUNT
    rest = scim.call("GET", f"/Users?startIndex={MAX_COUNT + 1}&count=100000").json()
    assert rest["itemsPerPage"] == 1 and rest["startIndex"] == MAX_COUNT + 1


# -- filter injection ----------------------------------------------------------------


INJECTIONS = {
    "always-true": 'userName eq "x" or "1" eq "1"',
    "unbalanced-quote": 'userName eq "x',
    "stray-quote": 'userName eq "x" "',
    "single-quotes": "userName eq 'x' or 'a' eq 'a'",
    "sql-comment": 'userName eq "x" --',
    "deep-nesting": "not (" * 600 + 'userName eq "x"' + ")" * 600,
    "deep-logic": "".join(f'(userName eq "u{i}" or ' for i in range(60))
    + 'userName eq "x"'
    + ")" * 60,
    "ten-thousand-ors": " or ".join(f'userName eq "u{i}"' for i in range(10_000)),
    "password": 'password eq "secret"',
    "unknown": 'roles eq "admin"',
    "nul": 'userName eq "a\x00"',
}


@pytest.mark.parametrize("text", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_filter_injection_is_refused_and_changes_nothing(
    scim: Scim, rt: Runtime, text: str
) -> None:
    scim.create_user("ada@acme.example")
    before = snapshot(rt)
    if len(text) < 4096:  # a longer one does not fit in a URL: POST /.search only
        answer = scim.client.get(
            "/scim/v2/acme/Users",
            params={"filter": text},
            headers={"authorization": f"Bearer {scim.secret}"},
        )
        refused(answer, 400, "invalidFilter")
    searched = scim.call("POST", "/Users/.search", {"schemas": [SEARCH], "filter": text})
    refused(searched, 400, "invalidFilter")
    assert snapshot(rt) == before


def test_quoted_sql_is_only_ever_a_string(scim: Scim, rt: Runtime) -> None:
    scim.create_user("ada@acme.example")
    text = "userName eq \"x' or '1'='1\" or userName eq \"x'; DROP TABLE scim_users; --\""
    assert scim.user_names(text) == []
    redundant = "(" * 1500 + 'userName eq "ada@acme.example"' + ")" * 1500  # no 500, bounded
    assert scim.call(
        "POST", "/Users/.search", {"schemas": [SEARCH], "filter": redundant}
    ).status_code in (200, 400)
    assert scim.user_names('userName co "%"') == [] and scim.user_names('userName co "_"') == []
    assert count(rt, ScimUser) == 1


def test_escaped_quotes_and_backslashes_in_filter_strings(scim: Scim) -> None:
    """RFC 7644 §3.4.2.2 strings are JSON strings: ``\\"`` is a quote, ``\\\\`` a backslash."""
    scim.create_user("ada@acme.example", displayName='Ada "the Countess" \\ Lovelace')
    scim.create_user("bob@acme.example", displayName="Bob")
    assert scim.user_names('displayName co "\\"the Countess\\""') == ["ada@acme.example"]
    assert scim.user_names('displayName co "\\\\ Love"') == ["ada@acme.example"]
    assert scim.user_names('displayName eq "Ada \\"the Countess\\""') == []
    assert scim.user_names('displayName co "\\"Bob"') == []


# -- PATCH path abuse -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "replace", "path": "id", "value": "other"}, "mutability"),
        ({"op": "replace", "path": "meta", "value": {"version": 'W/"9"'}}, "mutability"),
        ({"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "mutability"),
        ({"op": "remove", "path": "groups"}, "mutability"),
        ({"op": "replace", "path": "nosuch", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "name.nosuch", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "emails[", "value": "x"}, "invalidPath"),
        ({"op": "remove"}, "noTarget"),
        # a filter that describes no single value matches nothing: RFC 7644 §3.5.2.3
        (
            {"op": "replace", "path": 'emails[value co "home"].value', "value": "x@acme.example"},
            "noTarget",
        ),
        # one that does creates the value, unless it contradicts the filter or is no address
        ({"op": "replace", "path": 'emails[type eq "home"].type', "value": "work"}, "invalidValue"),
        (
            {"op": "replace", "path": 'emails[type eq "home"].value', "value": "not an address"},
            "invalidValue",
        ),
        ({"op": "explode", "path": "displayName", "value": "x"}, "invalidValue"),
        ({"op": "replace", "path": "name." + "x" * 600, "value": "x"}, "invalidPath"),
        (
            {
                "op": "replace",
                "value": {'emails[type eq "work"].value': "x", "name." + "x" * 600: 1},
            },
            "invalidPath",
        ),
        ({"op": "add", "value": {f"name.n{i}": "x" for i in range(101)}}, "invalidValue"),
    ],
)
def test_patch_path_abuse_is_refused_and_changes_nothing(
    scim: Scim, rt: Runtime, operation: dict[str, Any], scim_type: str
) -> None:
    created = scim.create_user("ada@acme.example", displayName="Ada")
    scim.create_group("Eng", created["id"])
    before = snapshot(rt)
    answer = scim.patch(
        f"/Users/{created['id']}",
        {"op": "replace", "path": "displayName", "value": "Changed"},
        operation,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json().get("scimType") == scim_type, answer.text
    after = scim.call("GET", f"/Users/{created['id']}")
    assert after.json()["displayName"] == "Ada" and after.headers["etag"] == 'W/"1"'
    assert snapshot(rt) == before


def test_group_patch_refuses_read_only_and_unknown_paths(scim: Scim) -> None:
    gid = scim.create_group("Eng")["id"]
    refused(
        scim.patch(f"/Groups/{gid}", {"op": "replace", "path": "id", "value": "x"}),
        400,
        "mutability",
    )
    refused(
        scim.patch(f"/Groups/{gid}", {"op": "add", "path": "owner", "value": "x"}),
        400,
        "invalidPath",
    )
    # displayName is required: scim2-models refuses its removal as a mutability error
    refused(
        scim.patch(f"/Groups/{gid}", {"op": "remove", "path": "displayName"}), 400, "mutability"
    )


# -- Group -> team links -------------------------------------------------------------


def _teams(rt: Runtime, *names: str) -> None:
    with rt.db.transaction() as db:
        org = service.get_org(db, "acme")
        for name in names:
            service.create_team(db, Actor.system(), operator_principal(), org, name, None)


def _places(rt: Runtime, email: str) -> dict[str, str]:
    with rt.db.transaction() as db:
        user = users.find_by_email(db, email)
        assert user is not None
        rows = db.execute(
            select(Team.name, TeamMembership.role)
            .join(Team, Team.id == TeamMembership.team_id)
            .where(TeamMembership.user_id == user.id)
        )
        return {name: role for name, role in rows if name != "everyone"}  # the default team


def _link(admin: TestClient, gid: str, *links: tuple[str, str]) -> None:
    body = [{"team": team, "team_role": role} for team, role in links]
    answer = admin.put(f"/api/v1/orgs/acme/scim/groups/{gid}/teams", json=body)
    assert answer.status_code == 200, answer.text


def test_linked_teams_are_backfilled_scim_managed_and_keep_the_best_remaining_grant(
    rt: Runtime, scim: Scim
) -> None:
    _teams(rt, "research", "infra")
    ada = scim.create_user("ada@acme.example")["id"]
    bob = scim.create_user("bob@acme.example")["id"]
    writers = scim.create_group("ml-writers", ada, bob)["id"]
    readers = scim.create_group("ml-readers", ada)["id"]
    admin = TestClient(create_app(runtime=rt))
    sign_in(admin, "admin@acme.example")
    _link(admin, writers, ("research", "write"))
    _link(admin, readers, ("research", "read"), ("infra", "read"))
    assert _places(rt, "ada@acme.example") == {"research": "write", "infra": "read"}  # backfilled
    assert _places(rt, "bob@acme.example") == {"research": "write"}

    with rt.db.transaction() as db:
        bob_id = users.find_by_email(db, "bob@acme.example").id  # type: ignore[union-attr]
    manual = admin.put(f"/api/v1/orgs/acme/teams/research/members/{bob_id}", json={"role": "admin"})
    assert manual.status_code == 403 and manual.json()["error"] == "team_scim_managed", manual.text
    assert admin.delete(f"/api/v1/orgs/acme/teams/research/members/{bob_id}").status_code == 403
    assert _places(rt, "bob@acme.example") == {"research": "write"}

    scim.patch(f"/Groups/{writers}", {"op": "remove", "path": f'members[value eq "{ada}"]'})
    assert _places(rt, "ada@acme.example") == {"research": "read", "infra": "read"}
    scim.patch(f"/Groups/{writers}", {"op": "remove", "path": "members"})
    assert _places(rt, "bob@acme.example") == {}
    assert scim.call("DELETE", f"/Groups/{readers}").status_code == 204
    assert _places(rt, "ada@acme.example") == {}


def test_team_pages_show_scim_managed_teams_without_member_controls(
    rt: Runtime, scim: Scim
) -> None:
    _teams(rt, "research", "infra")
    ada = scim.create_user("ada@acme.example")["id"]
    writers = scim.create_group("ml-writers", ada)["id"]
    admin = TestClient(create_app(runtime=rt))
    sign_in(admin, "admin@acme.example")
    _link(admin, writers, ("research", "write"))

    listing = admin.get("/acme/teams").text
    research = listing[listing.index('href="/acme/teams/research"') :].split("</li>")[0]
    infra = listing[listing.index('href="/acme/teams/infra"') :].split("</li>")[0]
    assert ">SCIM<" in research and "SCIM group ml-writers" in research
    assert "SCIM" not in infra

    managed = admin.get("/acme/teams/research").text
    assert 'id="tm-scim"' in managed and "ml-writers" in managed and "ada@acme.example" in managed
    assert "/members/" not in managed and 'action="/acme/teams/research/members"' not in managed
    manual = admin.get("/acme/teams/infra").text
    assert 'id="tm-scim"' not in manual and 'action="/acme/teams/infra/members"' in manual

    scim.call("DELETE", f"/Groups/{writers}")
    freed = admin.get("/acme/teams/research").text
    assert 'id="tm-scim"' not in freed and 'action="/acme/teams/research/members"' in freed


def test_group_names_drive_the_mapped_role(rt: Runtime, scim: Scim) -> None:
    from hubgate.sso import mappings
    from hubgate.sso.mappings import RoleRule

    with rt.db.transaction() as db:
        org = service.get_org(db, "acme")
        rules = [
            RoleRule("groups", "security", OrgRole.ADMIN),
            RoleRule("groups", "staff", OrgRole.READ),
        ]
        mappings.set_role_mappings(db, Actor.system(), operator_principal(), org, rules)
    ada = scim.create_user("ada@acme.example")["id"]
    security = scim.create_group("security", ada)["id"]
    assert role_of(rt, scim_org(rt), "ada@acme.example") == OrgRole.ADMIN
    scim.create_group("staff", ada)
    scim.patch(f"/Groups/{security}", {"op": "remove", "path": f'members[value eq "{ada}"]'})
    assert role_of(rt, scim_org(rt), "ada@acme.example") == OrgRole.READ
