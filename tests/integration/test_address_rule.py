"""One rule for the addresses and domains hubgate takes in
(:func:`hubgate.accounts.emails.accepted_email`): sign-up, an added email, a SCIM
User's ``emails`` and the ``userName`` standing for one, an org's domain (added,
verified by DNS or by an operator), an invitation, a setup link.

A special-use name (RFC 6761: ``acme.test``, ``acme.example``, ``corp.local``, ...)
is taken on a development instance (``HUBGATE_ENV=dev``: the demo, the tests) in
every one of those places; a production instance refuses it in every one, with the
same reason, and changes nothing. Both instances here share one database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate.access import OrgRole, Principal
from hubgate.accounts import users
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.db.models import Org, OrgDomain, User
from hubgate.errors import BadRequest
from hubgate.operator import operator_principal
from hubgate.orgs import service
from hubgate.runtime import Runtime, build_runtime
from hubgate.sso import domains, invitations, setup
from tests.conftest import PASSWORD, World, make_settings
from tests.integration.sso_world import count
from tests.integration.test_cli_domains import Hubgate
from tests.integration.test_scim import refused, scim_for, snapshot, user_body

SECRET = "production-secret-for-the-address-rule-tests"
SPECIAL_USE = "special-use name (RFC 6761)"


@pytest.fixture
def prod(database_url: str) -> Iterator[Runtime]:
    """A production instance on the test's database."""
    runtime = build_runtime(make_settings(database_url, env="production", secret_key=SECRET))
    yield runtime
    runtime.db.engine.dispose()


@pytest.fixture
def prod_client(prod: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=prod)) as test_client:
        yield test_client


def _acme(rt: Runtime, world: World, domain: str, *unverified: str) -> None:
    """Org ``acme`` with ``domain`` verified and ``unverified`` listed, set up by
    the development instance ``rt``."""
    org = world.org("acme", world.user(f"admin@{domain}"))
    with rt.db.transaction() as db:
        found = db.merge(org)
        for name in (domain, *unverified):
            domains.add(db, rt, Actor.system(), operator_principal(), found, name)
        domains.verify_by_operator(db, rt, Actor.system(), found, domain)


def _operator_on_acme(db: Session) -> tuple[Org, Principal]:
    return service.get_org(db, "acme"), operator_principal()


def test_development_takes_acme_test_wherever_an_address_goes(
    rt: Runtime, client: TestClient, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The demo's own path: the CLI verifies acme.test, then SCIM provisions and
    updates addresses there (its emails were refused as special-use before), and
    anyone signs up at partner.test."""
    monkeypatch.chdir(tmp_path)
    hubgate = Hubgate(database_url)
    hubgate("user", "create", "admin@acme.test", "--password-stdin", stdin=PASSWORD + "\n")
    hubgate("org", "create", "acme", "--admin", "admin@acme.test")
    hubgate("domain", "add", "--org", "acme", "acme.test")
    assert hubgate.json("domain", "verify", "--org", "acme", "acme.test")["verified"] is True
    scim = scim_for(rt, client, "acme")

    created = scim.create_user("carol@acme.test")
    assert created["emails"][0]["value"] == "carol@acme.test"
    path = 'emails[type eq "work"].value'
    moved = scim.patch(f"/Users/{created['id']}", {"op": "Replace", "path": path,
                                                    "value": "carol.c@acme.test"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["emails"][0]["value"] == "carol.c@acme.test"
    signed_up = client.post("/api/v1/signup", json={"email": "pat@partner.test",
                                                    "password": PASSWORD})  # fmt: skip
    assert signed_up.status_code == 201, signed_up.text


def test_production_scim_refuses_special_use_emails_and_user_names(
    rt: Runtime, world: World, prod_client: TestClient
) -> None:
    """Even where the org verified acme.test (on a development instance): the reason
    names the attribute, and nothing is stored."""
    _acme(rt, world, "acme.test")
    scim = scim_for(rt, prod_client, "acme")
    before = snapshot(rt)

    answer = scim.call("POST", "/Users", user_body("carol@acme.test"))
    refused(answer, 400, "invalidValue")
    assert answer.json()["detail"].startswith("emails: ") and SPECIAL_USE in answer.text
    nameless = {k: v for k, v in user_body("carol@acme.test").items() if k != "emails"}
    answer = scim.call("POST", "/Users", nameless)
    refused(answer, 400, "invalidValue")
    assert answer.json()["detail"].startswith("userName: ") and SPECIAL_USE in answer.text
    assert snapshot(rt) == before


def test_production_takes_a_user_principal_name_under_local_as_a_name(
    rt: Runtime, world: World, prod_client: TestClient
) -> None:
    """Entra's userName is the user principal name, on-premises often ``corp.local``:
    it is a name, not an address, while the User has emails; each of those must
    be an address, the secondary ones too."""
    _acme(rt, world, "acme-corp.com")
    scim = scim_for(rt, prod_client, "acme")
    body = user_body("jdoe@acme-corp.com", userName="jdoe@corp.local")
    created = scim.create_user("jdoe@acme-corp.com", userName="jdoe@corp.local")
    assert created["userName"] == "jdoe@corp.local"

    before = snapshot(rt)
    body["userName"] = "kim@corp.local"
    body["emails"] = [body["emails"][0] | {"value": "kim@acme-corp.com"},
                      {"value": "kim@home.localhost", "type": "home"}]  # fmt: skip
    answer = scim.call("POST", "/Users", body)
    refused(answer, 400, "invalidValue")
    assert "home.localhost" in answer.text and SPECIAL_USE in answer.text
    body["emails"][1]["value"] = "not an address"
    refused(scim.call("POST", "/Users", body), 400, "invalidValue")
    assert snapshot(rt) == before


def test_production_sign_up_refuses_special_use_addresses(
    prod: Runtime, prod_client: TestClient
) -> None:
    answer = prod_client.post("/api/v1/signup", json={"email": "pat@acme.test",
                                                      "password": PASSWORD})  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_email" and SPECIAL_USE in answer.text
    assert count(prod, User) == 0
    answer = prod_client.post("/api/v1/signup", json={"email": "pat@acme-corp.com",
                                                      "password": PASSWORD})  # fmt: skip
    assert answer.status_code == 201, answer.text


def test_production_domains_refuse_special_use_names_before_any_lookup(
    rt: Runtime, world: World, prod: Runtime
) -> None:
    """Listing one is refused; one listed on a development instance is verified
    neither by an operator nor by DNS (no lookup is even made)."""
    _acme(rt, world, "acme.example", "corp.local")
    with prod.db.transaction() as db, pytest.raises(BadRequest) as listed:
        acme = service.get_org(db, "acme")
        domains.add(db, prod, Actor.system(), operator_principal(), acme, "Other.TEST.")
    assert listed.value.code == "invalid_domain" and SPECIAL_USE in listed.value.message

    with prod.db.transaction() as db, pytest.raises(BadRequest) as vouched:
        domains.verify_by_operator(db, prod, Actor.system(), service.get_org(db, "acme"),
                                   "corp.local")  # fmt: skip
    assert vouched.value.code == "invalid_domain"
    asked: list[str] = []
    with pytest.raises(BadRequest) as looked_up:
        domains.verify_dns(prod, Actor.system(), _operator_on_acme, "corp.local",
                           lookup=lambda name: asked.append(name) or [])  # fmt: skip
    assert looked_up.value.code == "invalid_domain" and asked == []
    with rt.db.transaction() as db:
        listed_rows = {r.domain: r.verified_at is not None for r in db.scalars(select(OrgDomain))}
    assert listed_rows == {"acme.example": True, "corp.local": False}


def test_production_cli_refuses_to_verify_a_special_use_domain(
    rt: Runtime, world: World, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _acme(rt, world, "acme-corp.com", "acme.test")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={
        "HUBGATE_ENV": "production", "HUBGATE_SECRET_KEY": SECRET,
        "HUBGATE_DATABASE_URL": database_url, "HUBGATE_BASE_URL": None,
    })  # fmt: skip
    for command in ("verify", "add"):
        result = runner.invoke(main, ["domain", command, "--org", "acme", "acme.test"])
        assert result.exit_code == 1, result.output
        assert "invalid_domain" in result.stderr and SPECIAL_USE in result.stderr
    with rt.db.transaction() as db:
        row = db.scalars(select(OrgDomain).where(OrgDomain.domain == "acme.test")).one()
        assert row.verified_at is None


def test_production_invitations_setup_links_and_added_emails_refuse_them(
    rt: Runtime, world: World, prod: Runtime
) -> None:
    _acme(rt, world, "acme-corp.com")
    actor, principal = Actor.system(), operator_principal()
    with prod.db.transaction() as db:
        acme = service.get_org(db, "acme")
        admin = users.find_by_email(db, "admin@acme-corp.com")
        assert admin is not None
        attempts = (
            lambda: invitations.invite(db, prod, actor, principal, acme, "x@acme.test",
                                       OrgRole.READ),
            lambda: setup.create(db, prod, actor, principal, acme, "it@corp.local"),
            lambda: users.add_email(db, prod, actor, admin, "admin@acme.example"),
        )  # fmt: skip
        for attempt in attempts:
            with pytest.raises(BadRequest) as caught:
                attempt()
            assert caught.value.code == "invalid_email" and SPECIAL_USE in caught.value.message
