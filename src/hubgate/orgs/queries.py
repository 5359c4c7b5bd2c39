"""Read-side queries for pages and the API."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from hubgate.access import OrgRole
from hubgate.db.models import (
    AuditEvent,
    Email,
    Membership,
    Org,
    ScimGroup,
    ScimGroupTeam,
    ScimUser,
    SsoConnection,
    SsoLink,
    Team,
    TeamMembership,
    Token,
    User,
)

__all__ = [
    "AdminGap",
    "MemberRow",
    "TeamRow",
    "active_admins",
    "admin_gap",
    "members_of",
    "orgs_of",
    "personal_tokens",
    "primary_email",
    "team_tokens",
    "teams_of",
]


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: int
    email: str
    display_name: str
    role: str
    teams: dict[str, str]
    role_source: str = "manual"
    role_detail: str | None = None
    role_pinned: bool = False
    active: bool = True
    # How the person signs in here: the org's connections their account is linked
    # through, and whether it has a password of its own.
    connections: tuple[str, ...] = ()
    has_password: bool = False
    external_collaborator: bool = False
    scim_managed: bool = False

    @property
    def role_origin(self) -> str:
        """Where the role comes from, for people: "mapping from IdP group ml-admins",
        "invitation (by ...)", "default role", "SCIM group readers", "set by an
        admin", "pinned by an admin"."""
        if self.role_pinned:
            return "pinned by an admin"
        if self.role_source == "mapping" and self.role_detail:
            attribute, _, value = self.role_detail.partition("=")
            if attribute == "groups" and value:
                return f"mapping from IdP group {value}"
            return f"mapping from {self.role_detail}"
        if self.role_source == "scim" and self.role_detail:
            return f"SCIM group {self.role_detail}"
        if self.role_source == "invitation" and self.role_detail:
            return f"invitation (by {self.role_detail})"
        return _ORIGINS.get(self.role_source, self.role_source)

    @property
    def sign_in(self) -> str:
        """How the person signs in: "SSO (Okta)", "password", "SSO (Okta) and password"."""
        ways = [f"SSO ({', '.join(self.connections)})"] if self.connections else []
        if self.has_password:
            ways.append("password")
        return " and ".join(ways) or "no sign-in yet"


_ORIGINS = {
    "manual": "set by an admin",
    "default": "default role",
    "invitation": "invitation",
    "mapping": "mapping",
    "scim": "SCIM",
}


@dataclass(frozen=True, slots=True)
class AdminGap:
    """An org left without an active admin, and, when SCIM did it, when and whom."""

    at: datetime | None
    member: str | None
    how: str | None


@dataclass(frozen=True, slots=True)
class TeamRow:
    team: Team
    members: list[tuple[int, str, str]]
    # The SCIM Groups linked to the team: while there are any, its members come
    # from the identity provider and change only through SCIM.
    scim_groups: list[str] = field(default_factory=list)

    @property
    def scim_managed(self) -> bool:
        return bool(self.scim_groups)


def primary_email(db: Session, user_id: int) -> str:
    found = db.scalars(
        select(Email.address)
        .where(Email.user_id == user_id)
        .order_by(Email.is_primary.desc(), Email.id)
    ).first()
    return found or f"user:{user_id}"


def _team_roles(db: Session, org_id: int) -> dict[int, dict[str, str]]:
    rows = db.execute(
        select(TeamMembership.user_id, Team.name, TeamMembership.role)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(Team.org_id == org_id)
    )
    found: dict[int, dict[str, str]] = {}
    for user_id, team, role in rows:
        found.setdefault(user_id, {})[team] = role
    return found


def members_of(db: Session, org: Org) -> list[MemberRow]:
    """The org's members, each with teams, sign-in ways and badges, in two
    queries whatever their number (the members, then their teams and links)."""
    teams, links = _member_facts(db, org.id)
    rows = db.execute(_members_statement(org.id)).all()
    return [
        MemberRow(
            m.user_id,
            email or f"user:{m.user_id}",
            name,
            m.role,
            teams.get(m.user_id, {}),
            m.role_source,
            m.role_detail,
            m.role_pinned,
            m.deactivated_at is None,
            tuple(links.get(m.user_id, ())),
            bool(has_password),
            m.external_collaborator,
            bool(scim_managed),
        )
        for m, name, email, has_password, scim_managed in rows
    ]


def _members_statement(org_id: int) -> Select[Membership, str, str | None, bool, bool]:
    primary = (
        select(Email.address)
        .where(Email.user_id == Membership.user_id)
        .order_by(Email.is_primary.desc(), Email.id)
        .limit(1)
        .correlate(Membership)
        .scalar_subquery()
    )
    scim = (
        select(ScimUser.id)
        .where(ScimUser.org_id == org_id, ScimUser.user_id == Membership.user_id)
        .correlate(Membership)
        .exists()
    )
    return (
        select(Membership, User.display_name, primary, User.password_hash.is_not(None), scim)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.id)
    )


def _member_facts(
    db: Session, org_id: int
) -> tuple[dict[int, dict[str, str]], dict[int, list[str]]]:
    """Team places (team -> role) and the org's connections each member is linked
    through, in one statement."""
    places = (
        select(
            TeamMembership.user_id,
            literal("team").label("kind"),
            Team.name.label("name"),
            TeamMembership.role,
        )
        .join(Team, Team.id == TeamMembership.team_id)
        .where(Team.org_id == org_id)
    )
    linked = (
        select(SsoLink.user_id, literal("sso"), SsoConnection.name, literal(""))
        .join(SsoConnection, SsoConnection.id == SsoLink.connection_id)
        .where(SsoConnection.org_id == org_id)
    )
    teams: dict[int, dict[str, str]] = {}
    links: dict[int, list[str]] = {}
    for user_id, kind, name, role in db.execute(union_all(places, linked).order_by("name")):
        if kind == "team":
            teams.setdefault(user_id, {})[name] = role
        elif name not in links.setdefault(user_id, []):
            links[user_id].append(name)
    return teams, links


def active_admins(db: Session, org_id: int) -> int:
    """How many active admins the org has: members with the admin role that SCIM
    did not deactivate (the one place an active admin is defined; the last-admin
    rule, :func:`hubgate.orgs.service.loses_last_admin`, counts with it)."""
    statement = select(func.count()).where(
        Membership.org_id == org_id, Membership.role == OrgRole.ADMIN.label,
        Membership.deactivated_at.is_(None),
    )  # fmt: skip
    return int(db.scalar(statement) or 0)


def admin_gap(db: Session, org_id: int) -> AdminGap | None:
    """None while the org has an active admin; else what the last
    ``member.last_admin_deprovisioned`` warning says (derived, never stored)."""
    if active_admins(db, org_id):
        return None
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id, AuditEvent.action == "member.last_admin_deprovisioned")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if event is None:
        return AdminGap(None, None, None)
    data = json.loads(event.data or "{}")
    return AdminGap(event.at, data.get("member"), data.get("how"))


def orgs_of(db: Session, user_id: int) -> list[tuple[Org, str, dict[str, str]]]:
    rows = db.execute(
        select(Org, Membership.role)
        .join(Membership, Membership.org_id == Org.id)
        .where(Membership.user_id == user_id)
        .order_by(Org.name)
    ).all()
    return [(org, role, _team_roles(db, org.id).get(user_id, {})) for org, role in rows]


def teams_of(db: Session, org: Org) -> list[TeamRow]:
    teams = list(db.scalars(select(Team).where(Team.org_id == org.id).order_by(Team.name)))
    rows = db.execute(
        select(TeamMembership.team_id, TeamMembership.user_id, TeamMembership.role)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(Team.org_id == org.id)
        .order_by(TeamMembership.id)
    ).all()
    linked: dict[int, list[str]] = {}
    for team_id, group in db.execute(
        select(ScimGroupTeam.team_id, ScimGroup.display_name)
        .join(ScimGroup, ScimGroup.id == ScimGroupTeam.group_id)
        .where(ScimGroup.org_id == org.id)
        .order_by(ScimGroup.display_name)
    ):
        linked.setdefault(team_id, []).append(group)
    return [
        TeamRow(
            t,
            [(u, primary_email(db, u), r) for team_id, u, r in rows if team_id == t.id],
            linked.get(t.id, []),
        )
        for t in teams
    ]


def personal_tokens(db: Session, user_id: int) -> list[Token]:
    return list(
        db.scalars(
            select(Token)
            .where(Token.user_id == user_id, Token.kind == "personal")
            .order_by(Token.id.desc())
        )
    )


def team_tokens(db: Session, team_id: int) -> list[Token]:
    return list(db.scalars(select(Token).where(Token.team_id == team_id).order_by(Token.id.desc())))


def team_names(db: Session, org_id: int) -> dict[int, str]:
    """The org's teams by id, in name order."""
    rows = db.execute(select(Team.id, Team.name).where(Team.org_id == org_id).order_by(Team.name))
    return {team_id: name for team_id, name in rows}


def collaborators(db: Session, org: Org) -> list[str]:
    """The org's external collaborators, by primary address (or ``user:ID``)."""
    rows = db.scalars(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id, Membership.external_collaborator.is_(True))
    )
    return [u.emails[0].address if u.emails else f"user:{u.id}" for u in rows]
