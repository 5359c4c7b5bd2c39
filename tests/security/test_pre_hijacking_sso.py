"""Account pre-hijacking through an org's IdP (Sudhodanan & Paverd, USENIX Security
2022, §3): the five attack classes, each through SAML and OIDC, in basic and
managed mode, with acme's SSO switched on before or after the pre-registration.
The pre-registrant claims ``v@acme.example`` before its owner arrives; every test
ends by checking, from the pre-registrant's side, that they gained nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar

import pytest

from hubgate.access import OrgRole, Principal, Visibility
from hubgate.audit import Actor
from hubgate.db.models import (
    AuditEvent,
    Email,
    Membership,
    SsoAuthentication,
    SsoLink,
    User,
    WebSession,
)
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import invitations
from tests.conftest import World, sign_in
from tests.integration.sso_world import count, sso_org
from tests.integration.test_oidc_flow import ISSUER
from tests.security.pre_hijack import (
    ATTACKER_PASSWORD,
    VICTIM,
    Attacker,
    Idp,
    account,
    alive,
    browser,
    links_to,
    make_idp,
    pre_register,
    released,
    squat,
    verification_link,
    victim_signs_up,
)

T = TypeVar("T")
MALLORY = "mallory@acme.example"  # the pre-registrant's own mailbox at acme (a contractor)
STAGES = list(itertools.product(("saml", "oidc"), ("basic", "managed"), ("sso_first", "sso_after")))


@pytest.fixture(params=STAGES, ids=["-".join(stage) for stage in STAGES])
def stage(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(protocol, mode, whether acme switched SSO on before or after the attack began)."""
    protocol, mode, order = request.param
    return protocol, mode, order


def arrange(
    rt: Runtime,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    stage: tuple[str, str, str],
    attack: Callable[[], T],
) -> tuple[Idp, T]:
    """acme with a private model, and (in basic mode) an invitation for the owner
    of VICTIM; ``attack`` runs before or after acme switches SSO on."""
    protocol, mode, order = stage
    done = attack() if order == "sso_after" else None
    idp = make_idp(rt, world, monkeypatch, protocol, mode)
    idp.sso.resource("weights", Visibility.PRIVATE)
    if mode == "basic":
        with rt.db.transaction() as db:
            org = db.merge(idp.sso.org)
            invitations.invite(
                db, rt, Actor.system(), operator_principal(), org, VICTIM, OrgRole.WRITE
            )
    return idp, done if order == "sso_after" else attack()  # type: ignore[return-value]


def victim_arrives(rt: Runtime, idp: Idp, mode: str, *, opens_mail: bool) -> int:
    """The owner of VICTIM (who may first open the verification mail the
    pre-registrant caused, signed out) signs in through acme's IdP; in basic mode,
    told to make an account first, they sign up. Their account's id."""
    client = browser(rt)
    for token in links_to(rt, VICTIM)[-1:] if opens_mail else []:
        client.post("/api/v1/verify-email", json={"token": token})
    answer = idp.sign_in(client, VICTIM)
    if mode == "basic" and answer.get("error") == "account_required":
        client = victim_signs_up(rt, VICTIM)
        answer = idp.sign_in(client, VICTIM)
    assert answer["status"] == 200, f"the owner cannot get in: {answer}"
    me = client.get("/api/v1/me").json()
    assert me["id"] == answer["user_id"] and [o["org"] for o in me["orgs"]] == ["acme"]
    assert [e["address"] for e in me["emails"]] == [VICTIM], "foreign addresses on the account"
    assert client.get("/api/v1/me/tokens").json() == [], "a token the owner did not make"
    user_id: int = answer["user_id"]
    return user_id


def test_classic_federated_merge(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, stage: tuple[str, str, str]
) -> None:
    """Classic-federated merge: the pre-registrant signs up with the victim's
    address and a password of their own; the victim later signs in through acme's
    IdP and hubgate merges the two, so the pre-registrant's password (and token)
    open the victim's org account."""
    idp, attacker = arrange(rt, world, monkeypatch, stage, lambda: pre_register(rt, VICTIM))
    victim = victim_arrives(rt, idp, stage[1], opens_mail=False)
    attacker.gained_nothing(rt, victim)
    if attacker.account is not None:  # the squat went with the address it held
        assert not alive(rt, attacker.account)
        reason = "sso" if stage[1] == "managed" else "signup"
        assert released(rt) == [{"reason": reason, "account_deleted": True}]


def test_unexpired_session(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, stage: tuple[str, str, str]
) -> None:
    """Unexpired session: the pre-registrant signs up with the victim's address
    and keeps a session (and a token) open; the victim opens the verification mail
    and signs in through acme's IdP; the pre-registrant's session, password and
    token still reach the now verified, org-linked account (issue 17, reproduction 1)."""
    idp, attacker = arrange(rt, world, monkeypatch, stage, lambda: pre_register(rt, VICTIM))
    victim = victim_arrives(rt, idp, stage[1], opens_mail=True)
    attacker.gained_nothing(rt, victim)
    assert attacker.client.get("/api/v1/me").status_code == 401


def test_trojan_identifier(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, stage: tuple[str, str, str]
) -> None:
    """Trojan identifier: the pre-registrant's account (the victim's address) gets
    a second identifier the pre-registrant owns, an address of their own, verified,
    and their own IdP identity through acme's join link; after the owner links the
    account, the trojan identity still signs into it (issue 17, reproduction 2)."""
    idp, attacker = arrange(rt, world, monkeypatch, stage, lambda: pre_register(rt, VICTIM))
    with rt.db.transaction() as db:
        key = invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(idp.sso.org)
        )
    added = attacker.client.post("/api/v1/me/emails", json={"email": MALLORY})
    if added.status_code == 201:  # the pre-registrant reads their own mailbox
        token = verification_link(rt, MALLORY)
        attacker.client.post("/api/v1/verify-email", json={"token": token})
    idp.sign_in(attacker.client, MALLORY, subject="idp|mallory", start=f"/sso/join/{key}")
    victim = victim_arrives(rt, idp, stage[1], opens_mail=True)
    trojan = idp.sign_in(browser(rt), MALLORY, subject="idp|mallory", start=f"/sso/join/{key}")
    assert trojan.get("user_id") != victim, "the trojan identity signs into the owner's account"
    assert count(rt, SsoLink, SsoLink.user_id == victim) == 1
    attacker.gained_nothing(rt, victim)


def test_unexpired_email_change(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, stage: tuple[str, str, str]
) -> None:
    """Unexpired email change: the pre-registrant signs up with the victim's
    address and starts moving the account to an address of their own, leaving
    that confirmation link unopened; the victim takes the account over through
    acme's IdP; then the pre-registrant opens the link and owns the account again."""
    address = "eve@evil.example"

    def attack() -> Attacker:
        attacker = pre_register(rt, VICTIM)
        attacker.client.post("/api/v1/me/emails", json={"email": address})
        return attacker

    idp, attacker = arrange(rt, world, monkeypatch, stage, attack)
    victim = victim_arrives(rt, idp, stage[1], opens_mail=True)
    for token in links_to(rt, address):  # the confirmation link, opened late, signed in or not
        attacker.client.post("/api/v1/verify-email", json={"token": token})
        browser(rt).post("/api/v1/verify-email", json={"token": token})
    assert count(rt, Email, Email.address == address, Email.user_id == victim) == 0, (
        "the pre-registrant's address is on the owner's account"
    )
    login = browser(rt).post(
        "/api/v1/login", json={"email": address, "password": ATTACKER_PASSWORD}
    )
    assert login.status_code != 200 or login.json()["id"] != victim
    attacker.gained_nothing(rt, victim)


@pytest.mark.parametrize("order", ["sso_first", "sso_after"])
@pytest.mark.parametrize("mode", ["basic", "managed"])
def test_non_verifying_idp_of_another_org(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, mode: str, order: str
) -> None:
    """Non-verifying IdP: the pre-registrant runs their own org, evil, whose SAML
    IdP asserts any address; they sign in through it as the victim (before or
    after acme verified acme.example) to create or claim the victim's account."""
    evil = Idp(sso_org(rt, world, "evil", "evil.example"), None)
    evil.sso.set_mode("managed")

    def attack() -> dict[str, object]:
        return evil.sign_in(browser(rt), VICTIM, subject="evil|v")

    idp, answer = arrange(rt, world, monkeypatch, ("saml", mode, order), attack)
    assert (answer["status"], answer["error"]) == (403, "domain_mismatch")
    victim = victim_arrives(rt, idp, mode, opens_mail=False)
    again = evil.sign_in(browser(rt), VICTIM, subject="evil|v")
    assert again.get("user_id") != victim and count(rt, SsoLink, SsoLink.user_id == victim) == 1


@pytest.mark.parametrize("mode", ["basic", "managed"])
def test_non_verifying_oidc_provider(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Non-verifying IdP: acme's OpenID provider lets anyone register any address
    and says so (``email_verified: false``); the pre-registrant signs in with the
    victim's address to have hubgate create or claim the account under their subject."""
    idp = make_idp(rt, world, monkeypatch, "oidc", mode)
    assert idp.provider is not None
    idp.provider.claims.update(email=VICTIM, sub="idp|mallory-as-v", email_verified=False)
    before = _everything(rt)
    started = browser(rt)
    location = started.get("/sso/acme/start?next=/acme", follow_redirects=False)
    answer = started.get(
        f"/sso/oidc/{idp.sso.connection_id}/callback",
        params=idp.provider.authorize(location.headers["location"]),
        headers={"accept": "application/json"},
    )  # fmt: skip
    assert (answer.status_code, answer.json()["error"]) == (403, "email_unverified")
    assert _everything(rt) == before
    with rt.db.transaction() as db:
        invitations.invite(
            db, rt, Actor.system(), operator_principal(),
            db.merge(idp.sso.org), VICTIM, OrgRole.WRITE,
        )  # fmt: skip
    victim = victim_arrives(rt, idp, mode, opens_mail=False)
    with rt.db.transaction() as db:
        subjects = [s for (s,) in db.query(SsoLink.subject).filter(SsoLink.user_id == victim)]
    assert subjects == [f"{ISSUER} idp|v@acme.example"]  # the owner's subject, not the squatter's


# -- R4: which account an IdP identity links to ------------------------------------


def _everything(rt: Runtime) -> tuple[int, ...]:
    """Rows a refused sign-in must not touch."""
    models = (User, Email, Membership, SsoLink, WebSession, SsoAuthentication)
    return tuple(count(rt, model) for model in models)


def _refusals(rt: Runtime) -> list[str | None]:
    with rt.db.transaction() as db:
        rows = db.query(AuditEvent).filter(AuditEvent.action == "sso.login_refused")
        return [e.reason for e in rows.order_by(AuditEvent.id)]


@pytest.mark.parametrize("protocol", ["saml", "oidc"])
def test_basic_mode_never_links_the_unverified_holder_signed_out(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """The owner signs in through acme's IdP (basic mode, invited) while a
    pre-registrant holds their address unverified: hubgate must not link the
    pre-registrant's account, and it says the owner needs an account of their own."""
    idp = make_idp(rt, world, monkeypatch, protocol, "basic")
    with rt.db.transaction() as db:
        invitations.invite(
            db, rt, Actor.system(), operator_principal(),
            db.merge(idp.sso.org), VICTIM, OrgRole.WRITE,
        )  # fmt: skip
    squatter = world.user(VICTIM, verified=False)
    before = _everything(rt)
    answer = idp.sign_in(browser(rt), VICTIM)
    assert (answer["status"], answer["error"]) == (403, "account_required"), answer
    assert _everything(rt) == before and _refusals(rt) == ["account_required"]
    assert count(rt, SsoLink, SsoLink.user_id == squatter.id) == 0


@pytest.mark.parametrize("protocol", ["saml", "oidc"])
def test_basic_mode_never_links_the_unverified_holder_signed_in_as_it(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """The pre-registrant, signed into the account holding the victim's address
    unverified, walks acme's join link while the IdP vouches for the victim (a
    shared kiosk, a stolen IdP session): the account must not be linked."""
    idp = make_idp(rt, world, monkeypatch, protocol, "basic")
    with rt.db.transaction() as db:
        key = invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(idp.sso.org)
        )
    squatter = world.user(VICTIM, verified=False)
    client = browser(rt)
    sign_in(client, VICTIM)
    before = _everything(rt)
    answer = idp.sign_in(client, VICTIM, start=f"/sso/join/{key}")
    assert (answer["status"], answer["error"]) == (403, "account_email_unverified"), answer
    assert _everything(rt) == before and _refusals(rt) == ["account_email_unverified"]
    assert count(rt, Membership, Membership.user_id == squatter.id) == 0


@pytest.mark.parametrize("holder", ["primary", "secondary"])
@pytest.mark.parametrize("protocol", ["saml", "oidc"])
def test_managed_jit_is_never_blocked_by_a_pre_registration(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, protocol: str, holder: str
) -> None:
    """Denial of service by pre-registration: someone holds a new hire's address
    unverified (as their account's primary address, or added to their own verified
    account); in managed mode the hire's first sign-in must still create their
    account, and the holder loses the address (issue 17, reproduction 4)."""
    squatter, attacker = squat(rt, world, holder)
    idp = make_idp(rt, world, monkeypatch, protocol, "managed")
    idp.sso.resource("weights", Visibility.PRIVATE)
    client = browser(rt)
    answer = idp.sign_in(client, VICTIM)
    assert answer["status"] == 200 and answer["created"] is True, answer
    assert account(rt, answer["user_id"]) != squatter
    me = client.get("/api/v1/me").json()
    assert me["emails"] == [{"address": VICTIM, "verified": True, "primary": True}]
    assert alive(rt, squatter) is (holder == "secondary")
    if holder == "secondary":
        assert count(rt, Email, Email.user_id == squatter.id) == 1  # eve@evil.example alone
    assert released(rt) == [{"reason": "sso", "account_deleted": holder == "primary"}]
    if attacker is not None:
        attacker.gained_nothing(rt, answer["user_id"])


@pytest.mark.parametrize("protocol", ["saml", "oidc"])
def test_a_first_link_sends_the_person_to_review_the_account(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """Whatever a pre-registrant may have left on an account (a token, an address,
    a session) before its owner first links it to acme's IdP: the first link ends
    the account's other sessions and sends the owner to review them."""
    idp = make_idp(rt, world, monkeypatch, protocol, "basic")
    bob = world.user("bob@acme.example")
    world.member(idp.sso.org, bob, OrgRole.WRITE)
    other = browser(rt)
    sign_in(other, "bob@acme.example")
    assert other.post("/api/v1/me/emails", json={"email": "bob@home.example"}).status_code == 201
    made = other.post("/api/v1/me/tokens", json={"name": "left-behind", "scopes": ["read"]})
    assert made.status_code == 201
    client = browser(rt)
    sign_in(client, "bob@acme.example")
    answer = idp.sign_in(client, "bob@acme.example")
    assert answer["status"] == 200 and answer["linked"] is True, answer
    assert other.get("/api/v1/me").status_code == 401
    assert answer["next"] != "/acme", "the first link goes straight on, no review"
    review = client.get(answer["next"])
    assert review.status_code == 200
    assert "left-behind" in review.text and "bob@home.example" in review.text
    again = idp.sign_in(client, "bob@acme.example")
    assert again["next"] == "/acme"  # only the first link asks for a review
