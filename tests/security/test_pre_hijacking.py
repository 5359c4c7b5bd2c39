"""Account pre-hijacking without an IdP in the loop (Sudhodanan & Paverd, "Pre-hijacked
accounts", USENIX Security 2022): what an account whose address nobody confirmed
may do, what such an address reserves, where a verification link works, SCIM
provisioning of a pre-registered address, and the expiry of abandoned sign-ups.
The attacks through an org's IdP are in test_pre_hijacking_sso.py."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import update

from hubgate.access import Visibility
from hubgate.accounts import users
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, Email, Membership, Org, OutboxMail, Token, User
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World, sign_in
from tests.integration.sso_world import SsoOrg, count, sso_org
from tests.integration.test_scim import scim_for, user_body
from tests.security.pre_hijack import (
    ATTACKER_PASSWORD,
    VICTIM,
    Account,
    account,
    alive,
    browser,
    knows_password,
    links_to,
    pre_register,
    refusal_audited,
    released,
    squat,
    victim_signs_up,
)

OUTSIDER = "v@beta.test"  # an address in no org's domain
HTML = {"accept": "text/html"}


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


def _unverified_session(rt: Runtime, world: World, address: str = OUTSIDER) -> TestClient:
    """A browser signed into a fresh account whose only address is unverified."""
    world.user(address, verified=False, password=ATTACKER_PASSWORD)
    client = browser(rt)
    sign_in(client, address, ATTACKER_PASSWORD)
    return client


def _account(rt: Runtime, user: User | int) -> Account:
    found = account(rt, user if isinstance(user, int) else user.id)
    assert found is not None
    return found


def _rows(rt: Runtime) -> tuple[int, ...]:
    return tuple(count(rt, model) for model in (User, Email, Token, Org, Membership, OutboxMail))


# -- R1: an unverified account can do nothing that outlives it ----------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/me/tokens", {"name": "mine", "scopes": ["read", "write"]}),
        ("/api/v1/me/emails", {"email": "mallory@beta.test"}),
        ("/api/v1/orgs", {"name": "squat"}),
    ],
    ids=["token", "email", "org"],
)
def test_a_pre_registered_account_builds_nothing_that_outlives_it(
    rt: Runtime, world: World, path: str, body: dict[str, object]
) -> None:
    """The pre-registrant, signed into an account made with someone else's address
    and never verified, stocks it with a personal token, a trojan address of their
    own or an org, all of which would survive the owner's later take-over."""
    client = _unverified_session(rt, world)
    before = _rows(rt)
    answer = client.post(path, json=body)
    refusal_audited(rt, answer, "account_unverified")
    assert _rows(rt) == before


def test_a_pre_registered_account_mints_no_token_on_the_page(rt: Runtime, world: World) -> None:
    """The same token stocking through the settings page instead of the API."""
    client = _unverified_session(rt, world)
    before = _rows(rt)
    form = {"csrf_token": _csrf(client), "name": "mine", "scopes": "read"}
    answer = client.post("/settings/tokens", data=form, headers=HTML)
    assert answer.status_code == 403, f"not refused: {answer.status_code}"
    assert "account_unverified" in answer.text, answer.text[:300]
    assert _rows(rt) == before
    assert count(rt, AuditEvent, AuditEvent.reason == "account_unverified") == 1


def test_an_admin_cannot_make_a_pre_registered_account_a_member(rt: Runtime, world: World) -> None:
    """The pre-registrant asks an org admin to add "v@beta.test" (the address of
    someone the admin knows) to the org: the membership would then belong to
    whoever holds the unverified account."""
    world.user(OUTSIDER, verified=False, password=ATTACKER_PASSWORD)
    world.org("beta", world.user("admin@beta.test"))
    admin = browser(rt)
    sign_in(admin, "admin@beta.test")
    before = _rows(rt)
    answer = admin.post("/api/v1/orgs/beta/members", json={"email": OUTSIDER, "role": "read"})
    refusal_audited(rt, answer, "account_unverified")
    assert _rows(rt) == before


# -- R2: an unverified address reserves nothing ------------------------------------


def test_sign_up_is_not_blocked_by_a_pre_registration(rt: Runtime) -> None:
    """The pre-registrant signs up first with the owner's address (and signs in,
    and tries to keep a token); the owner's own sign-up must go through, and the
    pre-registrant's account, session, password and token go with the address."""
    attacker = pre_register(rt, OUTSIDER)
    assert attacker.account is not None
    owner = browser(rt)
    answer = owner.post("/api/v1/signup", json={"email": OUTSIDER, "password": PASSWORD})
    assert answer.status_code == 201, f"the pre-registration reserves the address: {answer.text}"
    assert not alive(rt, attacker.account)
    assert released(rt) == [{"reason": "signup", "account_deleted": True}]
    attacker.gained_nothing(rt, answer.json()["id"])
    assert attacker.client.get("/api/v1/me").status_code == 401
    refused = browser(rt).post(
        "/api/v1/login", json={"email": OUTSIDER, "password": ATTACKER_PASSWORD}
    )
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_credentials")


@pytest.mark.parametrize("holder", ["primary", "secondary"])
def test_adding_an_address_is_not_blocked_by_a_pre_registration(
    rt: Runtime, world: World, holder: str
) -> None:
    """Someone holds the owner's work address unverified (their account's primary
    address, or one they added to their own account); the owner adds it to their
    existing account: it goes through and the holder loses it."""
    if holder == "primary":
        squatter = _account(rt, world.user(OUTSIDER, verified=False, password=ATTACKER_PASSWORD))
    else:
        squatter = _account(rt, world.user("eve@evil.example", password=ATTACKER_PASSWORD))
        eve = browser(rt)
        sign_in(eve, "eve@evil.example", ATTACKER_PASSWORD)
        assert eve.post("/api/v1/me/emails", json={"email": OUTSIDER}).status_code == 201
    world.user("owner@home.example")
    owner = browser(rt)
    sign_in(owner, "owner@home.example")
    answer = owner.post("/api/v1/me/emails", json={"email": OUTSIDER})
    assert answer.status_code == 201, f"the pre-registration reserves the address: {answer.text}"
    assert alive(rt, squatter) is (holder == "secondary")
    assert count(rt, Email, Email.address == OUTSIDER, Email.user_id == squatter.id) == 0
    assert answer.json() == {"address": OUTSIDER, "verified": False, "primary": False}
    assert released(rt) == [{"reason": "email_added", "account_deleted": holder == "primary"}]


@pytest.mark.parametrize("via", ["signup", "email"])
def test_a_verified_address_stays_taken(rt: Runtime, world: World, via: str) -> None:
    """The other way round: someone who knows a verified member's address signs up
    with it, or adds it to their own account, to push the owner out."""
    world.user(OUTSIDER)
    client = browser(rt)
    if via == "email":
        world.user("eve@evil.example")
        sign_in(client, "eve@evil.example")
    before = _rows(rt)
    answer = (
        client.post("/api/v1/signup", json={"email": OUTSIDER, "password": ATTACKER_PASSWORD})
        if via == "signup"
        else client.post("/api/v1/me/emails", json={"email": OUTSIDER})
    )
    assert (answer.status_code, answer.json()["error"]) == (409, "email_taken")
    assert _rows(rt) == before and released(rt) == []


# -- R3: a verification link verifies only inside its own account's session -----------


def test_a_verification_link_opened_signed_out_verifies_nothing(
    rt: Runtime, client: TestClient
) -> None:
    """The owner of v@beta.test receives the verification mail the pre-registrant's
    sign-up caused and opens it, signed out: that must not confirm the
    pre-registrant's account (the paper's "unexpired session" lever)."""
    attacker = pre_register(rt, OUTSIDER)
    (token,) = links_to(rt, OUTSIDER)
    before = _rows(rt)
    page = client.get(f"/verify-email?token={token}", headers=HTML, follow_redirects=False)
    assert page.status_code == 303, f"the page answers {page.status_code} signed out"
    assert page.headers["location"].startswith("/login?next=")
    assert "verify-email" in unquote(page.headers["location"])  # back here once signed in
    answer = client.post("/api/v1/verify-email", json={"token": token})
    assert answer.status_code == 401, answer.text
    assert _verified(rt, OUTSIDER) is False and _rows(rt) == before
    # Its own account (the pre-registrant's, who never sees the mail) could still
    # use it: the refusal did not spend the link.
    mine = attacker.client.post("/api/v1/verify-email", json={"token": token})
    assert mine.status_code == 200, "the refused attempt spent the link"


@pytest.mark.parametrize("via", ["api", "page"])
@pytest.mark.parametrize("opener", ["owner", "attacker"])
def test_a_verification_link_opened_in_another_accounts_session_verifies_nothing(
    rt: Runtime, world: World, opener: str, via: str
) -> None:
    """A verification link opened inside another account's session: the owner,
    signed into their own account, opens the mail the pre-registrant's sign-up
    caused (``owner``); or the pre-registrant, signed in, opens a link meant for
    the owner's new account that they got hold of (``attacker``). Nothing may be
    verified, and the link must stay usable by the account it was made for."""
    if opener == "owner":
        own = pre_register(rt, OUTSIDER).client
        world.user("owner@home.example")
        other = browser(rt)
        sign_in(other, "owner@home.example")
    else:
        own = browser(rt)
        signed_up = own.post("/api/v1/signup", json={"email": OUTSIDER, "password": PASSWORD})
        assert signed_up.status_code == 201, signed_up.text
        sign_in(own, OUTSIDER)
        other = _unverified_session(rt, world, "eve@evil.example")
    (token,) = links_to(rt, OUTSIDER)
    before = _rows(rt)
    if via == "api":
        answer = other.post("/api/v1/verify-email", json={"token": token})
        refusal_audited(rt, answer, "link_wrong_account")
    else:
        form = {"csrf_token": _csrf(other), "token": token}
        answer = other.post("/verify-email", data=form, headers=HTML, follow_redirects=False)
        assert answer.status_code == 403, f"not refused: {answer.status_code}"
        assert "link_wrong_account" in answer.text, answer.text[:300]
        assert count(rt, AuditEvent, AuditEvent.reason == "link_wrong_account") == 1
    assert _rows(rt) == before and _verified(rt, OUTSIDER) is False
    mine = own.post("/api/v1/verify-email", json={"token": token})
    assert mine.status_code == 200, "the refused attempt spent the link"


def _csrf(client: TestClient, path: str = "/") -> str:
    """The CSRF token a signed-in page carries for its forms."""
    page = client.get(path, headers=HTML)
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match, (path, page.status_code, page.text[:300])
    return match.group(1)


def _verified(rt: Runtime, address: str) -> bool:
    with rt.db.transaction() as db:
        return db.query(Email).filter(Email.address == address).one().verified_at is not None


# -- R6: SCIM binds only to a verified address -----------------------------------------


@pytest.mark.parametrize("holder", ["primary", "secondary"])
@pytest.mark.parametrize("mode", ["basic", "managed"])
def test_scim_does_not_provision_into_a_pre_registered_account(
    rt: Runtime, client: TestClient, world: World, mode: str, holder: str
) -> None:
    """The pre-registrant holds a new hire's address unverified (as their account's
    primary, or added to their own account) before the IdP provisions the hire over
    SCIM: the membership, and the org's private model, would go to the pre-registrant
    (issue 17, reproduction 3)."""
    squatter, attacker = squat(rt, world, holder)
    acme = sso_org(rt, world)
    acme.set_mode(mode)
    acme.resource("weights", Visibility.PRIVATE)
    scim = scim_for(rt, client, "acme")
    answer = scim.call("POST", "/Users", user_body(VICTIM))
    assert answer.status_code == 201, answer.text
    with rt.db.transaction() as db:
        member = users.find_by_email(db, VICTIM)
        assert member is not None
        member_id, owner = member.id, member.managed_by_org_id
    assert account(rt, member_id) != squatter, "SCIM made the pre-registrant's account the member"
    assert not knows_password(rt, member_id, ATTACKER_PASSWORD)
    if mode == "managed":
        assert owner == acme.org.id
    assert alive(rt, squatter) is (holder == "secondary")
    if holder == "secondary":
        assert count(rt, Membership, Membership.user_id == squatter.id) == 0
    assert released(rt) == [{"reason": "scim", "account_deleted": holder == "primary"}]
    if attacker is not None:
        attacker.gained_nothing(rt, member_id)


def test_scim_binds_to_an_account_holding_the_address_verified(
    rt: Runtime, client: TestClient, world: World, acme: SsoOrg
) -> None:
    """The control: a person who really owns the address keeps their account."""
    bob = world.user(VICTIM)
    scim_for(rt, client, "acme").create_user(VICTIM)
    with rt.db.transaction() as db:
        member = users.find_by_email(db, VICTIM)
        assert member is not None and member.id == bob.id
    assert count(rt, Membership, Membership.user_id == bob.id) == 1 and released(rt) == []


# -- R7: abandoned pre-registrations expire -------------------------------------------


def _age(rt: Runtime, address: str, days: int) -> Account:
    """Backdate the account holding ``address`` (and its addresses) by ``days``."""
    with rt.db.transaction() as db:
        user = users.find_by_email(db, address)
        assert user is not None
        then = rt.now() - timedelta(days=days)
        db.execute(update(User).where(User.id == user.id).values(created_at=then))
        db.execute(update(Email).where(Email.user_id == user.id).values(created_at=then))
        user_id = user.id
    return _account(rt, user_id)


def test_an_abandoned_pre_registration_expires(rt: Runtime, world: World) -> None:
    """A pre-registration nobody confirmed sits waiting for its owner to arrive;
    after HUBGATE_UNVERIFIED_ACCOUNT_DAYS it is deleted and its address freed, so
    an old squat is worth nothing."""
    attacker = pre_register(rt, OUTSIDER)
    world.user("young@beta.test", verified=False)
    world.user("old@beta.test")
    old = _age(rt, OUTSIDER, 8)
    young = _age(rt, "young@beta.test", 6)
    verified = _age(rt, "old@beta.test", 400)
    assert rt.settings.unverified_account_days == 7
    with rt.db.transaction() as db:
        purged = users.purge_unverified(
            db, Actor.system(), rt.now(), rt.settings.unverified_account_days
        )
    assert purged == 1
    assert not alive(rt, old) and alive(rt, young) and alive(rt, verified)
    assert released(rt) == [{"reason": "expired", "account_deleted": True}]
    assert attacker.client.get("/api/v1/me").status_code == 401
    owner = victim_signs_up(rt, OUTSIDER)
    assert account(rt, owner.get("/api/v1/me").json()["id"]) != old


def test_the_purge_runs_from_the_command_line(
    rt: Runtime, world: World, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's ``hubgate user purge-unverified`` does the same sweep."""
    world.user(OUTSIDER, verified=False)
    old = _age(rt, OUTSIDER, 30)
    monkeypatch.chdir(tmp_path)
    env = {"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url,
           "HUBGATE_SECRET_KEY": None, "HUBGATE_BASE_URL": None,
           "HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}  # fmt: skip
    result = CliRunner(env=env).invoke(main, ["user", "purge-unverified"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert not alive(rt, old)
    assert released(rt) == [{"reason": "expired", "account_deleted": True}]
