"""An org's email domains through the service, against a real database; DNS is a
fake lookup function here (tests/integration/test_dns_verification.py asks a real
DNS server)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate.access import CredentialKind, OrgRole, Principal
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, Org, OrgDomain, SsoConnection
from hubgate.errors import BadRequest, Conflict, Forbidden, NotFound
from hubgate.runtime import Runtime
from hubgate.sso import domains
from tests import network_guard
from tests.conftest import World

ACTOR = Actor.system("test")


def admin_of(org: Org) -> Principal:
    return Principal(credential=CredentialKind.SESSION, org_id=org.id, org_role=OrgRole.ADMIN)


@pytest.fixture
def orgs(world: World) -> tuple[Org, Org]:
    """``acme`` and ``rival``, each with its own admin."""
    acme = world.org("acme", world.user("admin@acme.example"))
    rival = world.org("rival", world.user("admin@rival.example"))
    return acme, rival


def add(rt: Runtime, org: Org, domain: str) -> OrgDomain:
    with rt.db.transaction() as db:
        return domains.add(db, rt, ACTOR, admin_of(org), org, domain)


def rows(rt: Runtime) -> list[tuple[int, str, str | None]]:
    with rt.db.transaction() as db:
        found = db.scalars(select(OrgDomain).order_by(OrgDomain.org_id, OrgDomain.domain))
        return [(r.org_id, r.domain, r.verified_by) for r in found]


def actions(rt: Runtime) -> list[str]:
    with rt.db.transaction() as db:
        query = select(AuditEvent.action).where(AuditEvent.action.like("domain.%"))
        return list(db.scalars(query.order_by(AuditEvent.id)))


def scope_of(org: Org, principal: Principal | None = None) -> domains.OrgScope:
    return lambda _db: (org, principal or admin_of(org))


def published(row: OrgDomain) -> domains.TxtLookup:
    """A resolver that answers the row's own record among unrelated ones."""
    return lambda _name: [b"v=spf1 -all", domains.record_value(row).encode()]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("bücher.example", "xn--bcher-kva.example"),
        ("ACME.Example", "acme.example"),
        ("acme.example.", "acme.example"),
        ("Sub.ACME.example.", "sub.acme.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_stored_normalized(
    rt: Runtime, orgs: tuple[Org, Org], given: str, stored: str
) -> None:
    assert add(rt, orgs[0], given).domain == stored


def test_adding_again_in_any_spelling_is_idempotent(rt: Runtime, orgs: tuple[Org, Org]) -> None:
    first = add(rt, orgs[0], "bücher.example")
    again = add(rt, orgs[0], "XN--BCHER-KVA.example.")
    assert again.id == first.id and again.verification_token == first.verification_token
    assert rows(rt) == [(orgs[0].id, "xn--bcher-kva.example", None)]
    assert actions(rt) == ["domain.added"]


@pytest.mark.parametrize(
    "bad",
    [
        "bu\u0308cher.example",  # "bücher" with a combining diaeresis: not NFC
        "",
        "localhost",
        "a..example",
        "-a.example",
        "a_b.example",
        "me@acme.example",
        "acme.example/x",
        "x" * 64 + ".example",
        ("a" * 60 + ".") * 5 + "example",
        "é" * 5000,
    ],
)
def test_malformed_and_non_nfc_domains_are_refused(
    rt: Runtime, orgs: tuple[Org, Org], bad: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        add(rt, orgs[0], bad)
    assert refused.value.code == "invalid_domain"
    assert rows(rt) == [] and actions(rt) == []


def test_a_domain_verified_by_one_org_cannot_be_claimed_by_another(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    acme, rival = orgs
    add(rt, acme, "acme.example")
    with rt.db.transaction() as db:
        domains.verify_by_operator(db, rt, ACTOR, acme, "acme.example")
    with pytest.raises(Conflict) as refused:
        add(rt, rival, "ACME.example.")
    assert refused.value.code == "domain_claimed"
    assert "acme" not in refused.value.message.replace("acme.example", "")
    assert rows(rt) == [(acme.id, "acme.example", "operator")]


def test_two_orgs_racing_to_verify_one_domain_the_second_is_refused(
    rt: Runtime, orgs: tuple[Org, Org], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both listed the domain; ``rival``'s check passes before ``acme`` commits, and
    the partial unique index refuses ``rival``'s verification at flush."""
    acme, rival = orgs
    add(rt, acme, "shared.example")
    theirs = add(rt, rival, "shared.example")
    records = published(theirs)(domains.record_name("shared.example"))
    first, second = rt.db.sessions(), rt.db.sessions()
    check = domains._refuse_claimed

    def acme_commits_meanwhile(db: Session, org_id: int, name: str) -> None:
        check(db, org_id, name)
        first.commit()

    try:
        first.begin()
        domains.verify_by_operator(first, rt, ACTOR, acme, "shared.example")
        monkeypatch.setattr(domains, "_refuse_claimed", acme_commits_meanwhile)
        with second.begin(), pytest.raises(Conflict) as refused:
            domains.confirm_dns(
                second, rt, ACTOR, rival, admin_of(rival), "shared.example", records
            )
    finally:
        first.close()
        second.close()
    assert refused.value.code == "domain_claimed"
    assert isinstance(refused.value.__cause__, IntegrityError), "the index, not the pre-check"
    assert rows(rt) == [(acme.id, "shared.example", "operator"), (rival.id, "shared.example", None)]
    assert actions(rt) == ["domain.added", "domain.added", "domain.verified"]
    with rt.db.transaction() as db:
        owner = domains.verified_owner(db, "Shared.Example.")
        assert owner is not None and owner.org_id == acme.id


def test_dns_verification_accepts_the_published_token(rt: Runtime, orgs: tuple[Org, Org]) -> None:
    acme = orgs[0]
    row = add(rt, acme, "acme.example")
    asked: list[str] = []

    def lookup(name: str) -> list[bytes]:
        assert not network_guard.in_transaction(), "the lookup runs with no transaction open"
        asked.append(name)
        return published(row)(name)

    verified = domains.verify_dns(rt, ACTOR, scope_of(acme), "acme.example", lookup=lookup)
    described = domains.describe(verified)
    assert asked == ["_hubgate.acme.example"]
    assert described["verified"] is True and described["verified_by"] == "dns"
    with rt.db.transaction() as db:
        data = db.scalars(select(AuditEvent.data).where(AuditEvent.action == "domain.verified"))
        assert [json.loads(d) for d in data] == [{"how": "dns"}]


@pytest.mark.parametrize(
    "answer",
    [
        [],
        [b"hubgate-verification=wrong"],
        [b"hubgate-verification="],
        [b"v=spf1 -all"],
    ],
)
def test_dns_verification_refuses_other_records_and_changes_nothing(
    rt: Runtime, orgs: tuple[Org, Org], answer: list[bytes]
) -> None:
    acme = orgs[0]
    add(rt, acme, "acme.example")
    with pytest.raises(BadRequest) as refused:
        domains.verify_dns(rt, ACTOR, scope_of(acme), "acme.example", lookup=lambda _n: answer)
    assert refused.value.code == "domain_unverified"
    assert "_hubgate.acme.example" in refused.value.message
    assert rows(rt) == [(acme.id, "acme.example", None)]
    assert actions(rt) == ["domain.added"]


def test_a_token_with_whitespace_around_it_does_not_count(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    acme = orgs[0]
    row = add(rt, acme, "acme.example")
    padded = [f" {domains.record_value(row)}".encode()]
    with pytest.raises(BadRequest):
        domains.verify_dns(rt, ACTOR, scope_of(acme), "acme.example", lookup=lambda _n: padded)
    assert rows(rt) == [(acme.id, "acme.example", None)]


def test_only_admins_manage_domains_and_refusals_change_nothing(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    acme = orgs[0]
    row = add(rt, acme, "acme.example")
    writer = Principal(credential=CredentialKind.SESSION, org_id=acme.id, org_role=OrgRole.WRITE)
    attempts = [
        lambda db: domains.add(db, rt, ACTOR, writer, acme, "other.example"),
        lambda db: domains.remove(db, ACTOR, writer, acme, "acme.example"),
        lambda db: domains.assign_connection(db, ACTOR, writer, acme, "acme.example", None),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden), rt.db.transaction() as db:
            attempt(db)
    with pytest.raises(Forbidden):
        domains.verify_dns(rt, ACTOR, scope_of(acme, writer), "acme.example", lookup=published(row))
    assert rows(rt) == [(acme.id, "acme.example", None)]
    assert actions(rt) == ["domain.added"]


def test_the_number_of_domains_per_org_is_bounded(rt: Runtime, orgs: tuple[Org, Org]) -> None:
    acme = orgs[0]
    with rt.db.transaction() as db:
        for n in range(domains.MAX_DOMAINS_PER_ORG):
            domains.add(db, rt, ACTOR, admin_of(acme), acme, f"d{n}.example")
    with pytest.raises(Conflict) as refused:
        add(rt, acme, "one-more.example")
    assert refused.value.code == "too_many_domains"
    assert len(rows(rt)) == domains.MAX_DOMAINS_PER_ORG
    assert add(rt, acme, "d7.example").domain == "d7.example", "an existing one is still fine"


def test_removing_a_verified_domain_frees_it_for_another_org(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    acme, rival = orgs
    add(rt, acme, "acme.example")
    with rt.db.transaction() as db:
        domains.verify_by_operator(db, rt, ACTOR, acme, "acme.example")
        domains.remove(db, ACTOR, admin_of(acme), acme, "acme.example")
    add(rt, rival, "acme.example")
    with rt.db.transaction() as db:
        domains.verify_by_operator(db, rt, ACTOR, rival, "acme.example")
        owner = domains.verified_owner(db, "acme.example")
        assert owner is not None and owner.org_id == rival.id
    with pytest.raises(NotFound), rt.db.transaction() as db:
        domains.remove(db, ACTOR, admin_of(acme), acme, "acme.example")


def test_unverified_domains_have_no_owner(rt: Runtime, orgs: tuple[Org, Org]) -> None:
    add(rt, orgs[0], "acme.example")
    with rt.db.transaction() as db:
        assert domains.verified_owner(db, "acme.example") is None
        assert domains.verified_owner(db, "nobody.example") is None


def test_a_domain_is_owned_by_a_connection_of_its_own_org(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    acme, rival = orgs
    add(rt, acme, "acme.example")
    with rt.db.transaction() as db:
        ours = SsoConnection(org_id=acme.id, kind="saml", name="ours")
        theirs = SsoConnection(org_id=rival.id, kind="saml", name="theirs")
        db.add_all([ours, theirs])
        db.flush()
        ours_id, theirs_id = ours.id, theirs.id
    for wrong in (theirs_id, ours_id + theirs_id + 100):
        with pytest.raises(NotFound), rt.db.transaction() as db:
            domains.assign_connection(db, ACTOR, admin_of(acme), acme, "acme.example", wrong)
    with rt.db.transaction() as db:
        row = domains.assign_connection(db, ACTOR, admin_of(acme), acme, "acme.example", ours_id)
        assert domains.describe(row)["connection_id"] == ours_id
    with rt.db.transaction() as db:
        row = domains.assign_connection(db, ACTOR, admin_of(acme), acme, "acme.example", None)
        assert row.connection_id is None
        count = db.scalar(select(func.count()).where(AuditEvent.action == "domain.connection_set"))
    assert count == 2


def test_describe_names_the_record_to_publish(rt: Runtime, orgs: tuple[Org, Org]) -> None:
    row = add(rt, orgs[0], "bücher.example")
    described = domains.describe(row)
    assert described["domain"] == "xn--bcher-kva.example"
    assert described["verified"] is False and described["verified_by"] is None
    assert described["txt_record"] == {
        "name": "_hubgate.xn--bcher-kva.example",
        "value": f"hubgate-verification={row.verification_token}",
    }
    assert len(row.verification_token) >= 40
    assert add(rt, orgs[1], "bücher.example").verification_token != row.verification_token


def test_verifying_a_domain_another_org_holds_is_refused_before_any_lookup(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    acme, rival = orgs
    add(rt, acme, "acme.example")
    theirs = add(rt, rival, "acme.example")
    with rt.db.transaction() as db:
        domains.verify_by_operator(db, rt, ACTOR, acme, "acme.example")
    asked: list[str] = []
    for attempt in ("dns", "operator"):
        with pytest.raises(Conflict) as refused:
            if attempt == "dns":
                domains.verify_dns(
                    rt, ACTOR, scope_of(rival), "acme.example",
                    lookup=lambda name: asked.append(name) or published(theirs)(name),
                )  # fmt: skip
            else:
                with rt.db.transaction() as db:
                    domains.verify_by_operator(db, rt, ACTOR, rival, "acme.example")
        assert refused.value.code == "domain_claimed"
    assert asked == []
    assert rows(rt) == [(acme.id, "acme.example", "operator"), (rival.id, "acme.example", None)]


def test_what_changed_during_the_lookup_is_checked_again_before_storing(
    rt: Runtime, orgs: tuple[Org, Org]
) -> None:
    """The lookup runs between two transactions: another org verifying the domain,
    or the domain removed, meanwhile, is refused by the second one."""
    acme, rival = orgs
    add(rt, acme, "acme.example")
    theirs = add(rt, rival, "acme.example")

    def acme_verifies_meanwhile(name: str) -> list[bytes]:
        with rt.db.transaction() as db:
            domains.verify_by_operator(db, rt, ACTOR, acme, "acme.example")
        return published(theirs)(name)

    with pytest.raises(Conflict) as refused:
        domains.verify_dns(
            rt, ACTOR, scope_of(rival), "acme.example", lookup=acme_verifies_meanwhile
        )
    assert refused.value.code == "domain_claimed"
    assert rows(rt) == [(acme.id, "acme.example", "operator"), (rival.id, "acme.example", None)]

    def rival_removes_meanwhile(name: str) -> list[bytes]:
        with rt.db.transaction() as db:
            domains.remove(db, ACTOR, admin_of(rival), rival, "acme.example")
        return published(theirs)(name)

    with rt.db.transaction() as db:
        domains.remove(db, ACTOR, admin_of(acme), acme, "acme.example")
    with pytest.raises(NotFound):
        domains.verify_dns(
            rt, ACTOR, scope_of(rival), "acme.example", lookup=rival_removes_meanwhile
        )
    assert rows(rt) == []
