"""Revocation bites at once on every instance: two hubgate processes on one
database; a change made through instance A (its API, its SCIM endpoint) is seen by
the very next ``/auth/check`` on instance B, whose cache held the old answer.

Runs on SQLite (two processes on one file) and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hubgate.access import OrgRole, ResourceKind, Visibility
from hubgate.accounts import tokens, users
from hubgate.audit import Actor
from hubgate.db.models import User
from hubgate.operator import operator_principal
from hubgate.orgs import resources
from hubgate.provisioning import tokens as scim_tokens
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World
from tests.e2e.conftest import running_server
from tests.integration.sso_world import sso_org

pytestmark = pytest.mark.e2e

MODEL = "/acme/models/weights"
CALL = "/acme/deployments/chat/v1/chat/completions"


@dataclass(frozen=True)
class People:
    admin: User
    bob: User
    carol: User
    erin: User
    admin_token: str
    bob_token: str
    carol_token: str
    scim_token: str


@pytest.fixture
def people(rt: Runtime, world: World) -> People:
    acme = sso_org(rt, world)
    with rt.db.transaction() as db:
        admin = db.query(User).one()
        org = db.merge(acme.org)
        for kind, name in ((ResourceKind.MODEL, "weights"), (ResourceKind.DEPLOYMENT, "chat")):
            resources.create(
                db, Actor.system(), operator_principal(), org, kind, name, Visibility.PRIVATE
            )
        _, scim_secret = scim_tokens.create(db, Actor.system(), operator_principal(), org, "idp")
    bob, carol, erin = (world.user(f"{n}@acme.example") for n in ("bob", "carol", "erin"))
    for person in (bob, carol, erin):
        world.member(acme.org, person, OrgRole.WRITE)
    return People(
        admin, bob, carol, erin,
        admin_token=_token(rt, admin), bob_token=_token(rt, bob), carol_token=_token(rt, carol),
        scim_token=scim_secret,
    )  # fmt: skip


def _token(rt: Runtime, user: User) -> str:
    with rt.db.transaction() as db:
        return tokens.issue(db, user_id=user.id, name="t", scopes="write", expires_at=None).secret


@pytest.fixture
def instances(people: People, database_url: str) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        first = stack.enter_context(running_server(database_url))
        second = stack.enter_context(running_server(database_url))
        yield first, second


def check(base: str, uri: str, method: str = "GET", **headers: str) -> tuple[int, str | None]:
    answer = httpx.get(
        f"{base}/auth/check",
        headers={"X-Original-URI": uri, "X-Original-Method": method, **headers},
        timeout=30.0,
    )
    return answer.status_code, answer.headers.get("x-hubgate-reason")


def warm(base: str, uri: str, method: str = "GET", **headers: str) -> None:
    """Two allowed checks on ``base``: the second is answered from its cache."""
    for _ in range(2):
        assert check(base, uri, method, **headers) == (200, None)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@contextmanager
def signed_in(base: str, email: str) -> Iterator[httpx.Client]:
    """A browser-like client of ``base`` with a session and its CSRF token."""
    with httpx.Client(base_url=base, timeout=30.0) as client:
        answer = client.post("/api/v1/login", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        client.headers["x-csrf-token"] = client.get("/api/v1/me").json()["csrf_token"]
        yield client


def session_header(client: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"hubgate_session={client.cookies['hubgate_session']}"}


def api(base: str, method: str, path: str, secret: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method, f"{base}/api/v1{path}", json=body, headers=bearer(secret), timeout=30.0
    )


def test_changes_on_one_instance_bite_on_the_other_at_once(
    people: People, instances: tuple[str, str], rt: Runtime
) -> None:
    a, b = instances

    # A token revoked through A's API.
    with signed_in(a, "erin@acme.example") as erin:
        created = erin.post("/api/v1/me/tokens", json={"name": "cli", "scopes": ["write"]})
        assert created.status_code == 201, created.text
        secret, token_id = created.json()["token"], created.json()["id"]
        warm(b, MODEL, **bearer(secret))
        assert erin.delete(f"/api/v1/me/tokens/{token_id}").status_code == 204
    assert check(b, MODEL, **bearer(secret)) == (401, "token_revoked")

    # A role lowered: write may call the deployment, read may not.
    warm(b, CALL, "POST", **bearer(people.bob_token))
    lowered = api(a, "PATCH", f"/orgs/acme/members/{people.bob.id}", people.admin_token,
                  {"role": "read"})  # fmt: skip
    assert lowered.status_code == 200, lowered.text
    assert check(b, CALL, "POST", **bearer(people.bob_token)) == (403, "insufficient_role")
    assert check(b, MODEL, **bearer(people.bob_token)) == (200, None)

    # A member removed.
    warm(b, MODEL, **bearer(people.carol_token))
    removed = api(a, "DELETE", f"/orgs/acme/members/{people.carol.id}", people.admin_token)
    assert removed.status_code == 204, removed.text
    assert check(b, MODEL, **bearer(people.carol_token)) == (403, "not_member")

    # A session ended from another device, then a logout.
    with signed_in(a, "erin@acme.example") as laptop, signed_in(a, "erin@acme.example") as phone:
        on_laptop, on_phone = session_header(laptop), session_header(phone)
        warm(b, MODEL, **on_laptop)
        warm(b, MODEL, **on_phone)
        sessions = phone.get("/api/v1/me/sessions").json()
        laptop_id = next(s["id"] for s in sessions if not s["current"])
        assert phone.delete(f"/api/v1/me/sessions/{laptop_id}").status_code == 204
        assert check(b, MODEL, **on_laptop) == (401, "sign_in_required")
        assert check(b, MODEL, **on_phone) == (200, None)
        assert phone.post("/api/v1/logout").status_code == 204
    assert check(b, MODEL, **on_phone) == (401, "sign_in_required")

    # A member deactivated by the IdP's SCIM client.
    scim_deactivation_bites(a, b, people, rt)


def scim_deactivation_bites(a: str, b: str, people: People, rt: Runtime) -> None:
    scim = {"Authorization": f"Bearer {people.scim_token}", "Content-Type": "application/scim+json"}
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "dave@acme.example",
        "emails": [{"value": "dave@acme.example", "primary": True}],
        "active": True,
    }
    created = httpx.post(f"{a}/scim/v2/acme/Users", json=user, headers=scim, timeout=30.0)
    assert created.status_code == 201, created.text
    with rt.db.transaction() as db:
        found = users.find_by_email(db, "dave@acme.example")
        assert found is not None
    dave = _token(rt, found)
    warm(b, MODEL, **bearer(dave))
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    uid = created.json()["id"]
    answer = httpx.patch(f"{a}/scim/v2/acme/Users/{uid}", json=patch, headers=scim, timeout=30.0)
    assert answer.status_code == 200, answer.text
    assert check(b, MODEL, **bearer(dave)) == (403, "not_member")
