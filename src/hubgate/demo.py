"""The demo data behind ``hubgate demo``: one org to click through and curl against.

``acme`` has an admin, a writer and a reader, a ``research`` team holding a
private dataset and a private deployment, public and private models, a public
Space, and an ``inference`` team token for ``research``. A person outside the
org (``dan@partner.test``) shows what non-members see. Everything is created
by the operator through the usual services, so it is audited like real work.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from hubgate.access import OrgRole, ResourceKind, TeamRole, Visibility
from hubgate.audit import Actor
from hubgate.cli_operator import create_account, operator, operator_principal
from hubgate.db.models import Org, Team, User
from hubgate.orgs import resources, service, team_tokens
from hubgate.runtime import Runtime

__all__ = ["ORG", "DemoInfo", "DemoUser", "describe", "seed"]

ORG = "acme"
TEAM = "research"


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    display_name: str
    role: str | None  # the org role; None for a non-member


@dataclass(frozen=True, slots=True)
class DemoResource:
    kind: ResourceKind
    name: str
    visibility: Visibility
    team: str | None
    description: str


@dataclass(frozen=True, slots=True)
class DemoInfo:
    org: str
    password: str
    users: tuple[DemoUser, ...]
    resources: tuple[DemoResource, ...]
    team: str
    team_token: str
    team_token_id: int


USERS = (
    DemoUser("alice@acme.test", "Alice (admin)", "admin"),
    DemoUser("bob@acme.test", "Bob (write)", "write"),
    DemoUser("carol@acme.test", "Carol (read)", "read"),
    DemoUser("dan@partner.test", "Dan (not a member)", None),
)
RESOURCES = (
    DemoResource(
        ResourceKind.MODEL, "llama-mini", Visibility.PUBLIC, None, "A small public model."
    ),
    DemoResource(
        ResourceKind.MODEL, "secret-model", Visibility.PRIVATE, None, "Private to acme members."
    ),
    DemoResource(
        ResourceKind.DATASET, "eval-set", Visibility.PRIVATE, TEAM, "Only the research team."
    ),
    DemoResource(
        ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE, TEAM, "A chat model deployment."
    ),
    DemoResource(ResourceKind.SPACE, "playground", Visibility.PUBLIC, None, "A public demo app."),
)
TEAM_MEMBERS = (("bob@acme.test", TeamRole.WRITE),)


def new_password() -> str:
    """A fresh demo password (long enough for the password policy)."""
    return "demo-" + secrets.token_urlsafe(9)


def seed(rt: Runtime, password: str | None = None) -> DemoInfo:
    """Create the demo data in one transaction; the database must be empty and migrated."""
    password = password or new_password()
    actor = operator()
    with rt.db.transaction() as db:
        people = _people(db, rt, actor, password)
        org = _org(db, actor, people)
        team = _team(db, actor, org, people)
        for item in RESOURCES:
            resources.create(
                db, actor, operator_principal(org), org, item.kind, item.name,
                item.visibility, item.team, item.description,
            )  # fmt: skip
        token = team_tokens.create(
            db,
            actor,
            operator_principal(org),
            org,
            team,
            "demo-inference",
            ["inference"],
            None,
            rt.now(),
        )
    return DemoInfo(
        org=ORG, password=password, users=USERS, resources=RESOURCES, team=TEAM,
        team_token=token.secret, team_token_id=token.row.id,
    )  # fmt: skip


def _people(db: Session, rt: Runtime, actor: Actor, password: str) -> dict[str, User]:
    return {
        person.email: create_account(
            db,
            rt,
            actor,
            person.email,
            password=password,
            display_name=person.display_name,
            verified=True,
        )  # fmt: skip
        for person in USERS
    }


def _org(db: Session, actor: Actor, people: dict[str, User]) -> Org:
    admins = [p for p in USERS if p.role == OrgRole.ADMIN.label]
    org = service.create_org(
        db, actor, ORG, "Acme Corp", people[admins[0].email], require_verified_email=False
    )
    for person in USERS:
        if person.role is not None and person is not admins[0]:
            role = OrgRole.parse(person.role)
            service.add_member(db, actor, operator_principal(org), org, people[person.email], role)
    return org


def _team(db: Session, actor: Actor, org: Org, people: dict[str, User]) -> Team:
    team = service.create_team(db, actor, operator_principal(org), org, TEAM, "Research")
    for email, role in TEAM_MEMBERS:
        service.set_team_member(db, actor, operator_principal(org), org, team, people[email], role)
    return team


def describe(info: DemoInfo, base_url: str) -> str:
    """What to open, sign in with and curl: printed before the demo serves."""
    base = base_url.rstrip("/")
    accounts = "\n".join(f"  {u.email:<18} {u.role or 'not a member'}" for u in info.users)
    items = "\n".join(
        f"  {r.visibility.value:<8} {r.kind.value:<11} {info.org}/{r.name}"
        + (f"  (team {r.team})" if r.team else "")
        for r in info.resources
    )
    return f"""\
hubgate demo: {base}

  sign in      {base}/login
  org page     {base}/{info.org}
  API docs     {base}/api/v1/docs

Accounts (password for all: {info.password}):
{accounts}

Resources:
{items}

Team token for {info.org}/{info.team} (scope inference, id {info.team_token_id}):
  {info.team_token}

Ask forward-auth whether the token may call the deployment (200), then read the
dataset (403 scope_insufficient):
  curl -i {base}/auth/check -H 'Authorization: Bearer {info.team_token}' \\
    -H 'X-Original-URI: /{info.org}/deployments/chat/predict' -H 'X-Original-Method: POST'
  curl -i {base}/auth/check -H 'Authorization: Bearer {info.team_token}' \\
    -H 'X-Original-URI: /{info.org}/datasets/eval-set'
"""
