"""The identity rules of DESIGN.md §4, each from the side of someone who does not
own the mailbox: an unverified address reserves nothing, an unverified account
holds nothing that outlives it, a verification link verifies only in its own
account's session, and a first SSO link shows what else reaches the account."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.access import OrgRole
from hubgate.accounts import tokens, users
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, Email, Membership, OutboxMail, Token, User
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import invitations, setup
from tests.conftest import PASSWORD, World, sign_in
from tests.integration.sso_world import SsoOrg, count, person, sso_org
from tests.integration.test_cli import _runner
from tests.integration.test_scim import scim_for, user_body


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


def _released(rt: Runtime) -> list[dict[str, object]]:
    with rt.db.transaction() as db:
        events = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.email_released")
        ).all()
        return [{"target": e.target, **json.loads(e.data)} for e in events]


def _mail_to(rt: Runtime, address: str) -> list[OutboxMail]:
    with rt.db.transaction() as db:
        rows = db.scalars(select(OutboxMail).where(OutboxMail.recipient == address))
        return list(rows)


def _link_token(rt: Runtime, address: str) -> str:
    match = re.search(r"token=([A-Za-z0-9_-]+)", _mail_to(rt, address)[-1].body)
    assert match
    return match.group(1)


def _signed_in_client(rt: Runtime, email: str) -> TestClient:
    other = TestClient(create_app(runtime=rt))
    sign_in(other, email)
    return other


# -- an unverified address reserves nothing ------------------------------------------


def test_a_sign_up_takes_an_address_someone_holds_unverified(
    client: TestClient, rt: Runtime, world: World
) -> None:
    squatter = world.user("v@beta.example", verified=False)
    squatter_client = _signed_in_client(rt, "v@beta.example")
    answer = client.post("/api/v1/signup", json={"email": "v@beta.example", "password": PASSWORD})
    assert answer.status_code == 201 and answer.json()["id"] != squatter.id
    assert count(rt, User, User.id == squatter.id) == 0
    assert _released(rt) == [
        {"target": "v@beta.example", "reason": "signup", "account_deleted": True,
         "user": squatter.id},
    ]  # fmt: skip
    # The squatter's session went with the account.
    assert squatter_client.get("/api/v1/me").status_code == 401


def test_a_verified_address_stays_taken(client: TestClient, rt: Runtime, world: World) -> None:
    world.user("v@beta.example")
    answer = client.post("/api/v1/signup", json={"email": "v@beta.example", "password": PASSWORD})
    assert answer.status_code == 409 and answer.json()["error"] == "email_taken"
    assert _released(rt) == []


def test_adding_an_address_takes_it_from_an_unverified_secondary_holder(
    client: TestClient, rt: Runtime, world: World
) -> None:
    holder = world.user("mallory@evil.example")
    with rt.db.transaction() as db:
        users.add_email(db, rt, Actor.system(), db.merge(holder), "v@beta.example")
    world.user("v@other.example")
    sign_in(client, "v@other.example")
    added = client.post("/api/v1/me/emails", json={"email": "v@beta.example"})
    assert added.status_code == 201
    assert _released(rt) == [
        {"target": "v@beta.example", "reason": "email_added", "account_deleted": False,
         "user": holder.id},
    ]  # fmt: skip
    with rt.db.transaction() as db:
        assert [e.address for e in db.get_one(User, holder.id).emails] == ["mallory@evil.example"]


# -- an unverified account holds nothing ----------------------------------------------


def _refused_unverified(answer: httpx.Response) -> None:
    assert answer.status_code == 403
    assert answer.json()["error"] == "account_unverified"


def test_an_unverified_account_makes_no_token_no_address_no_org(
    client: TestClient, rt: Runtime, world: World
) -> None:
    world.user("new@else.example", verified=False)
    sign_in(client, "new@else.example")
    before = (count(rt, Token), count(rt, Email), count(rt, Membership))
    _refused_unverified(client.post("/api/v1/me/tokens", json={"name": "t", "scopes": ["read"]}))
    _refused_unverified(client.post("/api/v1/me/emails", json={"email": "b@else.example"}))
    _refused_unverified(client.post("/api/v1/orgs", json={"name": "neworg"}))
    assert (count(rt, Token), count(rt, Email), count(rt, Membership)) == before
    assert _refusals(rt) == [
        ("/api/v1/me/tokens", "account_unverified"),
        ("/api/v1/me/emails", "account_unverified"),
        ("/api/v1/orgs", "account_unverified"),
    ]


def _refusals(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.db.transaction() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "request.refused"))
        return [(e.target, e.reason) for e in events]


def test_an_admin_cannot_add_an_unverified_account(
    client: TestClient, rt: Runtime, world: World
) -> None:
    admin = world.user("boss@acme.example")
    world.org("acme", admin)
    world.user("new@else.example", verified=False)
    sign_in(client, "boss@acme.example")
    before = count(rt, Membership)
    answer = client.post(
        "/api/v1/orgs/acme/members", json={"email": "new@else.example", "role": "read"}
    )
    _refused_unverified(answer)
    assert count(rt, Membership) == before


def test_unverified_accounts_expire_and_free_their_address(
    rt: Runtime, world: World, database_url: str
) -> None:
    old = world.user("old@else.example", verified=False)
    world.user("fresh@else.example", verified=False)
    world.user("kept@else.example")
    with rt.db.transaction() as db:
        db.get_one(User, old.id).emails[0].created_at = rt.now() - timedelta(days=8)
    runner = _runner({"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url})
    result = runner.invoke(main, ["user", "purge-unverified", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"purged": 1, "days": 7}
    with rt.db.transaction() as db:
        left = set(db.scalars(select(Email.address)))
    assert left == {"fresh@else.example", "kept@else.example"}
    assert [e["reason"] for e in _released(rt)] == ["expired"]


# -- a verification link verifies only in its own account's session ---------------------


def test_a_verification_link_opened_in_another_account_stays_unspent(
    client: TestClient, rt: Runtime, world: World
) -> None:
    client.post("/api/v1/signup", json={"email": "v@beta.example", "password": PASSWORD})
    token = _link_token(rt, "v@beta.example")
    world.user("mallory@evil.example")
    sign_in(client, "mallory@evil.example")
    wrong = client.post("/api/v1/verify-email", json={"token": token})
    assert wrong.status_code == 403 and wrong.json()["error"] == "link_wrong_account"
    assert _refusals(rt) == [("/api/v1/verify-email", "link_wrong_account")]
    assert count(rt, Email, Email.verified_at.is_not(None)) == 1  # mallory's own only
    owner = _signed_in_client(rt, "v@beta.example")
    assert owner.post("/api/v1/verify-email", json={"token": token}).status_code == 200


def test_the_verification_mail_says_what_to_do_when_you_did_not_sign_up(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/signup", json={"email": "v@beta.example", "password": PASSWORD})
    body = _mail_to(rt, "v@beta.example")[-1].body
    assert "Did not sign up" in body and "deleted after 7 days" in body


# -- SCIM and SSO are the authority for the org's verified domain -----------------------


def test_scim_provisions_its_own_account_over_an_unverified_holder(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    squatter = world.user("v@acme.example", verified=False)
    scim = scim_for(rt, client, "acme")
    created = scim.call("POST", "/Users", user_body("v@acme.example"))
    assert created.status_code == 201, created.text
    assert count(rt, User, User.id == squatter.id) == 0
    with rt.db.transaction() as db:
        user = users.find_verified(db, "v@acme.example")
        assert user is not None and user.password_hash is None
        assert user.managed_by_org_id is None  # basic mode: not owned by the org
    assert [e["reason"] for e in _released(rt)] == ["scim"]


def _signs_in_from_a_browser(
    client: TestClient, acme: SsoOrg, email: str, *, follow: bool
) -> httpx.Response:
    """A SAML sign-in as a browser makes it (HTML, not JSON answers)."""
    client.headers["accept"] = "text/html"
    request_id, relay = acme.start(client)
    response = acme.answer(request_id, **person(email))
    return client.post(
        f"/sso/saml/{acme.connection_id}/acs",
        data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=follow,
    )  # fmt: skip


def test_a_first_link_mails_and_shows_what_else_reaches_the_account(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    bob = world.user("bob@acme.example")
    world.member(acme.org, bob, OrgRole.WRITE)
    with rt.db.transaction() as db:
        tokens.create_personal(db, Actor.system(), bob.id, "laptop", ["read"], None, rt.now())
    answer = _signs_in_from_a_browser(client, acme, "bob@acme.example", follow=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/account/security?linked=acme&next=")
    (notice,) = _mail_to(rt, "bob@acme.example")
    assert "linked to the single sign-on of acme" in notice.body
    assert "access token laptop" in notice.body


def test_a_first_link_with_nothing_else_goes_straight_on(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    bob = world.user("bob@acme.example")
    world.member(acme.org, bob, OrgRole.WRITE)
    answer = acme.sign_in(client, **person("bob@acme.example"))
    assert answer["linked"] is True
    (notice,) = _mail_to(rt, "bob@acme.example")
    assert "- nothing else" in notice.body


# -- mail that carries a link -----------------------------------------------------------


def test_invitations_and_setup_links_are_mailed(rt: Runtime, world: World, acme: SsoOrg) -> None:
    with rt.db.transaction() as db:
        org = db.merge(acme.org)
        principal = operator_principal()
        invitations.invite(db, rt, Actor.system("boss"), principal, org, "new@acme.example",
                           OrgRole.READ)  # fmt: skip
        _row, key = setup.create(db, rt, Actor.system("boss"), principal, org, "it@acme.example")
    (invited,) = _mail_to(rt, "new@acme.example")
    assert rt.url("/sso/invite/") in invited.body and "read" in invited.body
    (portal,) = _mail_to(rt, "it@acme.example")
    assert rt.url(f"/setup/{key}") in portal.body


def test_the_review_after_a_first_link_lists_the_token_and_revokes_it_in_one_click(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    bob = world.user("bob@acme.example")
    world.member(acme.org, bob, OrgRole.WRITE)
    with rt.db.transaction() as db:
        made = tokens.create_personal(
            db, Actor.system(), bob.id, "laptop", ["read"], None, rt.now()
        )
    answer = _signs_in_from_a_browser(client, acme, "bob@acme.example", follow=True)
    assert answer.status_code == 200 and "linked to acme's single sign-on" in answer.text
    assert 'href="/acme"' in answer.text and "laptop" in answer.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    assert csrf is not None
    revoked = client.post(
        f"/settings/tokens/{made.row.id}/revoke", data={"csrf_token": csrf.group(1)},
        follow_redirects=False,
    )  # fmt: skip
    assert revoked.status_code == 303
    with rt.db.transaction() as db:
        assert db.get_one(Token, made.row.id).revoked_at is not None


def test_each_instance_expires_unverified_accounts_in_the_background(
    rt: Runtime, world: World
) -> None:
    old = world.user("old@else.example", verified=False)
    with rt.db.transaction() as db:
        db.get_one(User, old.id).emails[0].created_at = rt.now() - timedelta(days=7, minutes=1)
    app = create_app(runtime=rt)
    with TestClient(app):
        (purge,) = [job for job in app.state.worker.jobs if job.name == "purge-unverified"]
    assert purge.every == 3600
    purge.run()  # the worker's own first pass may have run it already: then it finds none
    assert count(rt, User, User.id == old.id) == 0
    assert [e["reason"] for e in _released(rt)] == ["expired"]
