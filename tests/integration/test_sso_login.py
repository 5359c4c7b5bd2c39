"""The organization SSO policy over HTTP, in-process: JIT in managed mode, linking,
mappings, basic mode's freshness, invitations, the join link, refusals that change
nothing (the same journeys against real IdPs are in tests/e2e)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hubgate.access import OrgRole, Principal, TeamRole, Visibility
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import (
    AuditEvent,
    Ephemeral,
    Membership,
    SsoAuthentication,
    SsoConnection,
    SsoLink,
    TeamMembership,
    User,
    WebSession,
)
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import activation, invitations, login, mappings, members, policy
from hubgate.sso.connections import Through
from hubgate.sso.flows import signin
from hubgate.sso.flows.verified import Verified
from hubgate.sso.identity import Browser, Identity
from hubgate.sso.mappings import RoleRule
from tests.conftest import PASSWORD, World, sign_in
from tests.integration.sso_world import SsoOrg, count, person, role_of, sso_org


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


def _everything(rt: Runtime) -> tuple[int, ...]:
    """Rows a refused sign-in must not have touched."""
    return tuple(
        count(rt, model)
        for model in (User, Membership, TeamMembership, SsoLink, WebSession, SsoAuthentication)
    )


def _operator(acme: SsoOrg):  # type: ignore[no-untyped-def]
    return operator_principal()


def test_managed_mode_creates_the_account_just_in_time(
    client: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    acme.set_mode("managed")
    answer = acme.sign_in(client, **person("ada@acme.example", "all-staff"))
    assert answer["status"] == 200, answer
    assert answer["created"] is True and answer["org"] == "acme"
    me = client.get("/api/v1/me").json()
    assert [e["address"] for e in me["emails"]] == ["ada@acme.example"]
    (membership,) = me["orgs"]
    assert membership["role"] == "write" and membership["teams"] == {"everyone": "write"}
    assert membership["sso"] == "fresh" and membership["sso_fresh_until"]
    with rt.db.transaction() as db:
        actions = {e.action for e in db.query(AuditEvent).filter(AuditEvent.org_id == acme.org.id)}
    assert {"sso.jit_created", "sso.linked", "sso.login"} <= actions
    with rt.db.transaction() as db:
        login = db.query(AuditEvent).filter(AuditEvent.action == "sso.login").one()
    assert (login.actor, login.actor_id) == ("ada@acme.example", me["id"])
    again = acme.sign_in(TestClient(create_app(runtime=rt)), **person("ada@acme.example"))
    assert again["status"] == 200 and again["created"] is False
    assert count(rt, User) == 2 and count(rt, SsoLink) == 1


def test_basic_mode_creates_no_account(client: TestClient, rt: Runtime, acme: SsoOrg) -> None:
    acme.set_mode("basic")
    before = _everything(rt)
    answer = acme.sign_in(client, **person("ada@acme.example"))
    assert answer["status"] == 403 and answer["error"] == "account_required"
    assert _everything(rt) == before


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("ada@globex.example", "domain_mismatch"),  # another org's verified domain
        ("ada@nobody.example", "domain_mismatch"),  # nobody's domain
    ],
)
def test_foreign_domains_are_refused_and_change_nothing(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg, email: str, code: str
) -> None:
    sso_org(rt, world, "globex", "globex.example")
    acme.set_mode("managed")
    before = _everything(rt)
    answer = acme.sign_in(client, **person(email))
    assert (answer["status"], answer["error"]) == (403, code)
    assert _everything(rt) == before
    with rt.db.transaction() as db:
        refused = db.query(AuditEvent).filter(AuditEvent.action == "sso.login_refused").one()
    assert refused.reason == code and refused.trace_id == answer["trace_id"]


def test_another_orgs_domain_is_refused_even_for_a_linked_subject(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    acme.set_mode("managed")
    assert acme.sign_in(client, **person("ada@acme.example", name_id="ada-1"))["status"] == 200
    sso_org(rt, world, "globex", "globex.example")
    answer = acme.sign_in(client, **person("ada@globex.example", name_id="ada-1"))
    assert answer["error"] == "domain_mismatch"


def test_an_existing_account_is_linked_by_its_verified_email(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    bob = world.user("bob@acme.example")
    other = TestClient(create_app(runtime=rt))
    sign_in(other, "bob@acme.example")  # before managed mode refuses passwords
    acme.set_mode("managed")
    answer = acme.sign_in(client, **person("bob@acme.example", name_id="okta|bob"))
    assert answer["status"] == 200 and answer["linked"] is True
    assert answer["user_id"] == bob.id
    assert other.get("/api/v1/me").status_code == 401  # the account's other sessions ended
    # Later, the IdP renames bob: the (connection, subject) link keeps the account.
    renamed = acme.sign_in(client, **person("robert@acme.example", name_id="okta|bob"))
    assert renamed["user_id"] == bob.id and count(rt, User) == 2


def test_an_unverified_holder_never_blocks_a_managed_sign_in(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    """Someone registered eve's address without owning the mailbox. The org's IdP
    vouches for eve: she gets an account of her own, and the pre-registration loses
    the address and, as it was its primary one, the account with its password."""
    acme.set_mode("managed")
    squatter = world.user("eve@acme.example", verified=False)
    answer = acme.sign_in(client, **person("eve@acme.example"))
    assert answer["created"] is True and answer["user_id"] != squatter.id
    assert count(rt, User, User.id == squatter.id) == 0
    with rt.db.transaction() as db:
        released = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.email_released")
        ).one()
        assert released.target == "eve@acme.example"
        assert json.loads(released.data) == {
            "reason": "sso",
            "account_deleted": True,
            "user": squatter.id,
        }
    old_password = TestClient(create_app(runtime=rt)).post(
        "/api/v1/login", json={"email": "eve@acme.example", "password": PASSWORD}
    )
    assert old_password.status_code == 401


@pytest.mark.parametrize("signed_in", [False, True])
def test_an_unverified_address_links_nothing_in_basic_mode(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg, signed_in: bool
) -> None:
    """Basic mode makes no accounts: the IdP vouching for an address that an
    account holds unverified links that account neither signed out nor from its
    own session (verify it first); nothing changes."""
    world.user("eve@acme.example", verified=False)
    if signed_in:
        sign_in(client, "eve@acme.example")
    before = _everything(rt)
    answer = acme.sign_in(client, **person("eve@acme.example"))
    expected = "account_email_unverified" if signed_in else "account_required"
    assert answer["error"] == expected
    assert _everything(rt) == before


def test_password_sign_in_is_refused_in_managed_mode_until_lifted(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    world.user("carol@acme.example")
    acme.set_mode("managed")
    refused = client.post(
        "/api/v1/login", json={"email": "carol@acme.example", "password": PASSWORD}
    )
    assert refused.status_code == 403 and refused.json()["error"] == "sso_enforced"
    assert refused.json()["details"]["sso_url"] == "/sso/acme/start"
    wrong = client.post("/api/v1/login", json={"email": "carol@acme.example", "password": "x" * 12})
    assert wrong.json()["error"] == "invalid_credentials"  # nothing learned without the password
    with rt.db.transaction() as db:
        policy.set_enforcement(
            db, rt, Actor.system(), Principal.operator(), db.merge(acme.org), False
        )
    assert (
        client.post(
            "/api/v1/login", json={"email": "carol@acme.example", "password": PASSWORD}
        ).status_code
        == 200
    )
    with rt.db.transaction() as db:
        policy.set_enforcement(
            db, rt, Actor.system(), Principal.operator(), db.merge(acme.org), True
        )
        changes = db.query(AuditEvent).filter(AuditEvent.action == "sso.enforcement_changed")
        assert [e.data for e in changes] == [
            '{"from": "on", "to": "off"}',
            '{"from": "off", "to": "on"}',
        ]


def test_role_mapping_follows_the_idp(client: TestClient, rt: Runtime, acme: SsoOrg) -> None:
    acme.set_mode("managed")
    with rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), _operator(acme), db.merge(acme.org),
            [RoleRule("groups", "hub-admins", OrgRole.ADMIN),
             RoleRule("groups", "readers", OrgRole.READ)],
        )  # fmt: skip
    ada = "ada@acme.example"
    assert acme.sign_in(client, **person(ada, "readers", "hub-admins"))["status"] == 200
    assert role_of(rt, acme.org, ada) is OrgRole.ADMIN  # the most privileged match wins
    acme.sign_in(client, **person(ada, "readers"))
    assert role_of(rt, acme.org, ada) is OrgRole.READ
    acme.sign_in(client, **person(ada))
    assert role_of(rt, acme.org, ada) is OrgRole.WRITE  # no match: the default role


def test_the_verified_identity_is_the_first_record_of_each_sign_in(
    client: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    """The policy reads before it writes, and ``sso.identity_verified`` still comes
    first, ahead of the account, membership and role it wrote, ``sso.login`` last."""
    acme.set_mode("managed")
    with rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), _operator(acme), db.merge(acme.org),
            [RoleRule("groups", "readers", OrgRole.READ)],
        )  # fmt: skip
    ada = "ada@acme.example"
    trails = []
    for groups in (("readers",), (), ()):
        seen = _trail(rt)
        assert acme.sign_in(client, **person(ada, *groups))["status"] == 200
        trails.append(_trail(rt)[len(seen) :])
    first, changed, same = trails
    assert first[0] == "sso.identity_verified" and first[-1] == "sso.login"
    assert {"sso.jit_created", "sso.linked", "member.added"} <= set(first)
    assert changed[0] == "sso.identity_verified" and changed[-1] == "sso.login"
    assert len(changed) > 2  # the role the mapping no longer gives, changed and audited
    assert same == ["sso.identity_verified", "sso.login"]
    assert role_of(rt, acme.org, ada) is OrgRole.WRITE


def _trail(rt: Runtime) -> list[str]:
    """Every audit record's action, in the order written."""
    with rt.db.transaction() as db:
        return [e.action for e in db.query(AuditEvent).order_by(AuditEvent.id)]


def test_a_mapping_set_without_a_way_to_be_admin_is_refused(rt: Runtime, acme: SsoOrg) -> None:
    with rt.db.transaction() as db:
        db.execute(update(Membership).values(role_source="mapping"))
    with pytest.raises(Exception) as refused, rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), _operator(acme), db.merge(acme.org),
            [RoleRule("groups", "readers", OrgRole.READ)],
        )  # fmt: skip
    assert getattr(refused.value, "code", None) == "no_admin_path"


def test_team_mapping_adds_and_removes_only_mapped_places(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    acme.set_mode("managed")
    with rt.db.transaction() as db:
        org = db.merge(acme.org)
        from hubgate.orgs import service

        for name in ("research", "infra"):
            service.create_team(db, Actor.system(), _operator(acme), org, name, None)
        mappings.set_team_mappings(
            db, Actor.system(), _operator(acme), org,
            [("groups", "ml-research", "research", TeamRole.WRITE),
             ("groups", "sre", "infra", TeamRole.READ)],
        )  # fmt: skip
    ada = "ada@acme.example"
    acme.sign_in(client, **person(ada, "ml-research", "sre"))
    teams = client.get("/api/v1/me").json()["orgs"][0]["teams"]
    assert teams == {"everyone": "write", "research": "write", "infra": "read"}
    with rt.db.transaction() as db:  # an admin places ada in infra by hand
        from hubgate.accounts import users
        from hubgate.orgs import service

        org = db.merge(acme.org)
        user = users.find_by_email(db, ada)
        assert user is not None
        service.set_team_member(
            db, Actor.system(), _operator(acme), org, service.get_team(db, org, "infra"), user,
            TeamRole.ADMIN,
        )  # fmt: skip
    acme.sign_in(client, **person(ada))
    teams = client.get("/api/v1/me").json()["orgs"][0]["teams"]
    assert teams == {"everyone": "write", "infra": "admin"}  # research gone, manual stays


def test_rules_and_places_reads_the_users_places_in_this_org_only(
    rt: Runtime, world: World, acme: SsoOrg
) -> None:
    globex = sso_org(rt, world, "globex", "globex.example")
    with rt.db.transaction() as db:
        from hubgate.accounts import users
        from hubgate.orgs import service

        admin = users.find_by_email(db, "admin@acme.example")
        assert admin is not None
        service.join(db, globex.org.id, admin.id, OrgRole.READ)  # a place in globex too
        org = db.merge(acme.org)
        research = service.create_team(db, Actor.system(), _operator(acme), org, "research", None)
        mappings.set_role_mappings(
            db, Actor.system(), _operator(acme), org,
            [RoleRule("groups", "staff", OrgRole.READ), RoleRule("groups", "sec", OrgRole.ADMIN)],
        )  # fmt: skip
        mappings.set_team_mappings(
            db, Actor.system(), _operator(acme), org, [("groups", "ml", "research", TeamRole.WRITE)]
        )
        roles, teams, places = mappings.rules_and_places(db, acme.org.id, admin.id)
        assert (roles, teams) == mappings.load_rules(db, acme.org.id)
        everyone = service.default_team(db, acme.org.id).id
        mine = db.query(TeamMembership).filter(TeamMembership.user_id == admin.id).all()
    assert [r.value for r in roles] == ["staff", "sec"]
    assert [t.team_id for t in teams] == [research.id]
    assert len(mine) == 2  # the default teams of acme and of globex
    (place,) = (m for m in mine if m.team_id == everyone)
    assert places == {everyone: (place.role, place.source)}


def test_basic_mode_gates_private_content_until_sso(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    bob = world.user("bob@acme.example")
    world.member(acme.org, bob, OrgRole.WRITE)
    acme.resource("secret", Visibility.PRIVATE)
    acme.resource("open", Visibility.PUBLIC)
    acme.set_mode("basic")
    sign_in(client, "bob@acme.example")
    private = client.get("/api/v1/orgs/acme/resources/model/secret")
    assert private.status_code == 401 and private.json()["error"] == "sso_required"
    assert private.json()["details"]["sso_url"].endswith("/sso/acme/start?next=/acme")
    assert client.get("/api/v1/orgs/acme/resources/model/open").status_code == 200
    token = client.post("/api/v1/me/tokens", json={"name": "ci", "scopes": ["read"]}).json()[
        "token"
    ]
    bearer = {"authorization": f"Bearer {token}"}
    assert (
        client.get(
            "/auth/check", headers={**bearer, "x-original-uri": "/acme/models/secret"}
        ).status_code
        == 401
    )
    answer = acme.sign_in(client, **person("bob@acme.example"))
    assert answer["status"] == 200 and answer["linked"] is True
    assert client.get("/api/v1/orgs/acme/resources/model/secret").status_code == 200
    assert (
        client.get(
            "/auth/check", headers={**bearer, "x-original-uri": "/acme/models/secret"}
        ).status_code
        == 200
    )
    # The org's session timeout passes: blocked again, the token too.
    with rt.db.transaction() as db:
        db.execute(update(SsoAuthentication).values(authenticated_at=rt.now() - timedelta(days=8)))
    assert client.get("/api/v1/orgs/acme/resources/model/secret").json()["error"] == "sso_required"
    assert (
        client.get(
            "/auth/check", headers={**bearer, "x-original-uri": "/acme/models/secret"}
        ).status_code
        == 401
    )


def test_basic_optional_and_external_collaborators_are_not_blocked(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    guest = world.user("guest@partner.example")
    world.member(acme.org, guest, OrgRole.READ)
    acme.resource("secret", Visibility.PRIVATE)
    acme.set_mode("basic")
    sign_in(client, "guest@partner.example")
    assert client.get("/api/v1/orgs/acme/resources/model/secret").status_code == 401
    with rt.db.transaction() as db:
        members.set_collaborator(
            db, Actor.system(), _operator(acme), db.merge(acme.org), db.merge(guest), True
        )
    assert client.get("/api/v1/orgs/acme/resources/model/secret").status_code == 200
    with rt.db.transaction() as db:
        members.set_collaborator(
            db, Actor.system(), _operator(acme), db.merge(acme.org), db.merge(guest), False
        )
    acme.set_mode("basic-optional")
    assert client.get("/api/v1/orgs/acme/resources/model/secret").status_code == 200


def test_sso_for_one_org_does_not_open_another(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    globex = sso_org(rt, world, "globex", "globex.example")
    bob = world.user("bob@acme.example")
    for org in (acme, globex):
        world.member(org.org, bob, OrgRole.WRITE)
        org.resource("secret", Visibility.PRIVATE)
        org.set_mode("basic")
    sign_in(client, "bob@acme.example")
    assert acme.sign_in(client, **person("bob@acme.example"))["status"] == 200
    assert client.get("/api/v1/orgs/acme/resources/model/secret").status_code == 200
    assert client.get("/api/v1/orgs/globex/resources/model/secret").status_code == 401


def test_invitation_role_then_mapping_beats_it(
    client: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    acme.set_mode("basic")
    with rt.db.transaction() as db:
        invitations.invite(
            db, rt, Actor.system(), _operator(acme), db.merge(acme.org), "ada@acme.example",
            OrgRole.READ,
        )  # fmt: skip
    acme.set_mode("managed")
    assert acme.sign_in(client, **person("ada@acme.example"))["status"] == 200
    assert role_of(rt, acme.org, "ada@acme.example") is OrgRole.READ  # not the default write
    with rt.db.transaction() as db:
        mappings.set_role_mappings(
            db, Actor.system(), _operator(acme), db.merge(acme.org),
            [RoleRule("groups", "ml-platform", OrgRole.WRITE),
             RoleRule("groups", "hub-admins", OrgRole.ADMIN)],
        )  # fmt: skip
    acme.sign_in(client, **person("ada@acme.example", "ml-platform"))
    assert role_of(rt, acme.org, "ada@acme.example") is OrgRole.WRITE
    acme.sign_in(client, **person("ada@acme.example"))
    assert role_of(rt, acme.org, "ada@acme.example") is OrgRole.READ  # back to the invitation


def test_basic_mode_admits_only_invited_or_joining_people(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    dan = world.user("dan@acme.example")
    acme.set_mode("basic")
    sign_in(client, "dan@acme.example")
    before = _everything(rt)
    refused = acme.sign_in(client, **person("dan@acme.example"))
    assert refused["error"] == "not_member" and _everything(rt) == before
    with rt.db.transaction() as db:
        key = invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(acme.org)
        )
    answer = acme.sign_in(client, start=f"/sso/join/{key}", **person("dan@acme.example"))
    assert answer["status"] == 200 and answer["next"] == "/acme"
    assert role_of(rt, acme.org, "dan@acme.example") is OrgRole.WRITE
    with rt.db.transaction() as db:
        invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(acme.org)
        )
    assert client.get(f"/sso/join/{key}", follow_redirects=False).status_code == 404
    del dan


def test_twenty_concurrent_first_sign_ins_make_one_account(rt: Runtime, acme: SsoOrg) -> None:
    acme.set_mode("managed")
    identity = Identity(
        connection_id=acme.connection_id, subject="okta|new", email="new@acme.example",
        email_verified=True, display_name="New Person", groups=(),
    )  # fmt: skip
    results: list[object] = []
    with rt.db.transaction() as db:
        connection = Through.of(db.get_one(SsoConnection, acme.connection_id))
    verified = Verified(connection, identity, "/acme")

    def one() -> None:
        try:
            results.append(signin.policy(rt, Actor.system(), verified, Browser()))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    signed = [r for r in results if isinstance(r, login.SignedIn)]
    assert len(signed) == 20, [r for r in results if not isinstance(r, login.SignedIn)]
    assert len({s.user_id for s in signed}) == 1
    assert count(rt, User) == 2 and count(rt, SsoLink) == 1
    assert count(rt, Membership) == 2 and count(rt, WebSession) == 20


def _sso_trail(rt: Runtime, acme: SsoOrg) -> list[tuple[str, str | None]]:
    with rt.db.transaction() as db:
        events = db.query(AuditEvent).filter(
            AuditEvent.org_id == acme.org.id, AuditEvent.action.like("sso.%")
        )
        return [(e.action, e.reason) for e in events.order_by(AuditEvent.id)]


def test_an_answer_the_policy_refused_stays_spent(
    client: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    """The answer is spent in a transaction of its own before the policy runs: the
    policy's refusal leaves the pending request and the assertion id taken."""
    acme.set_mode("managed")
    request_id, relay_state = acme.start(client)
    saml = acme.answer(request_id, **person("ada@nobody.example"))
    before, trail = _everything(rt), _sso_trail(rt, acme)
    first = acme.post(client, saml, relay_state)
    assert (first["status"], first["error"]) == (403, "domain_mismatch")
    again = acme.post(client, saml, relay_state)
    assert (again["status"], again["error"]) == (400, "saml_replayed")
    assert _everything(rt) == before
    assert count(rt, Ephemeral, Ephemeral.purpose == "saml_request") == 0
    assert _sso_trail(rt, acme)[len(trail) :] == [
        ("sso.identity_verified", None),
        ("sso.login_refused", "domain_mismatch"),
        ("sso.login_refused", "saml_replayed"),
    ]


def test_a_sign_in_that_lost_a_race_runs_again_and_its_answer_stays_spent(
    client: TestClient, rt: Runtime, acme: SsoOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme.set_mode("managed")
    calls: list[object] = []
    real = login.sign_in

    def loses_the_first_race(*args: object, **kwargs: object) -> login.SignedIn:
        calls.append(args)
        if len(calls) == 1:
            raise login.Raced()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(login, "sign_in", loses_the_first_race)
    request_id, relay_state = acme.start(client)
    saml = acme.answer(request_id, **person("ada@acme.example"))
    trail = _sso_trail(rt, acme)
    answer = acme.post(client, saml, relay_state)
    assert answer["status"] == 200 and answer["created"] is True and len(calls) == 2
    assert count(rt, User) == 2 and count(rt, SsoLink) == 1 and count(rt, WebSession) == 1
    replayed = acme.post(TestClient(create_app(runtime=rt)), saml, "")
    assert replayed["error"] == "saml_replayed"
    actions = [action for action, _ in _sso_trail(rt, acme)[len(trail) :]]
    assert actions.count("sso.identity_verified") == 1
    assert actions.index("sso.identity_verified") < actions.index("sso.login")


def test_a_deactivated_member_is_refused(client: TestClient, rt: Runtime, acme: SsoOrg) -> None:
    acme.set_mode("managed")
    acme.sign_in(client, **person("ada@acme.example"))
    with rt.db.transaction() as db:
        db.execute(
            update(Membership).where(Membership.role != "admin").values(deactivated_at=rt.now())
        )
    before = _everything(rt)
    answer = acme.sign_in(TestClient(create_app(runtime=rt)), **person("ada@acme.example"))
    assert answer["error"] == "user_deprovisioned" and _everything(rt) == before


def test_a_connection_under_test_only_shows_the_identity(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = sso_org(rt, world)
    with rt.db.transaction() as db:
        db.execute(update(SsoConnection).values(state="verified"))
    before = _everything(rt)
    answer = acme.sign_in(client, **person("ada@acme.example"))
    assert answer["status"] == 200 and answer["identity"]["email"] == "ada@acme.example"
    assert _everything(rt) == before


def test_start_picks_the_connection_serving_the_persons_domain(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    from hubgate.sso import connections, domains
    from tests.integration.test_saml_flow import idp_metadata
    from tests.security.saml_forge import session_keys

    with rt.db.transaction() as db:
        org = db.merge(acme.org)
        second = connections.create_saml(
            db, rt, Actor.system(), _operator(acme), org, idp_metadata(session_keys().idp.cert_pem)
        )
        connections.mark_verified(second, rt)
        activation.activate(db, Actor.system(), Principal.operator(), second)
        domains.add(db, rt, Actor.system(), _operator(acme), org, "labs.acme.example")
        domains.verify_by_operator(db, rt, Actor.system(), org, "labs.acme.example")
        domains.assign_connection(
            db, Actor.system(), _operator(acme), org, "labs.acme.example", second.id
        )
        second_id = second.id
    anonymous = client.get("/sso/acme/start", follow_redirects=False)
    assert anonymous.status_code == 200 and "Choose how to sign in" in anonymous.text
    world.member(acme.org, world.user("lab@labs.acme.example"), OrgRole.WRITE)
    sign_in(client, "lab@labs.acme.example")
    started = client.get("/sso/acme/start", follow_redirects=False)
    assert started.status_code == 303
    with rt.db.transaction() as db:
        pending = [e for e in db.query(Ephemeral).filter(Ephemeral.purpose == "saml_request")]
    assert [json.loads(e.payload)["connection_id"] for e in pending] == [second_id]


def test_start_finds_the_org_by_name_and_only_its_connections_that_are_not_inactive(
    client: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    """Unknown (or impossible) org names are 404; an org with no connection, or only
    an inactive one, has none to sign in with, even when the inactive one is named."""
    for name in ("nobody", "Not-A-Slug!", "acme%00"):
        assert client.get(f"/sso/{name}/start", follow_redirects=False).status_code == 404
    world.org("bare", world.user("admin@bare.example"))
    bare = client.get("/sso/bare/start", follow_redirects=False)
    assert bare.status_code == 400 and bare.json()["error"] == "sso_not_configured"
    assert client.get("/sso/acme/start", follow_redirects=False).status_code == 303
    with rt.db.transaction() as db:
        db.execute(update(SsoConnection).values(state="inactive"))
    for query in ("", f"?connection={acme.connection_id}"):
        off = client.get(f"/sso/acme/start{query}", follow_redirects=False)
        assert off.status_code == 400 and off.json()["error"] == "sso_not_configured"
