"""Organizations, members and teams (DESIGN.md §1).

Every function runs inside the caller's transaction and never commits. Access
questions go to :func:`hubgate.principals.require`.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgRole, OrgTarget, Principal, TeamRole, TeamTarget
from hubgate.accounts import users
from hubgate.audit import Actor
from hubgate.db.models import Membership, Org, ScimGroupTeam, Team, TeamMembership, User
from hubgate.errors import Conflict, Forbidden, NotFound
from hubgate.orgs.names import check_org_name, check_team_name, is_slug
from hubgate.orgs.names import display_name as display_name_or
from hubgate.principals import require

__all__ = [
    "DEFAULT_TEAM",
    "DEFAULT_TEAM_ROLE",
    "add_member",
    "admin_count",
    "create_org",
    "create_team",
    "delete_team",
    "get_org",
    "get_team",
    "join",
    "membership",
    "remove_member",
    "remove_team_member",
    "set_role",
    "set_team_member",
]

DEFAULT_TEAM = "everyone"
DEFAULT_TEAM_ROLE = {
    OrgRole.READ: TeamRole.READ,
    OrgRole.CONTRIBUTOR: TeamRole.READ,
    OrgRole.WRITE: TeamRole.WRITE,
    OrgRole.ADMIN: TeamRole.WRITE,
}


def get_org(db: Session, name: str) -> Org:
    org = db.scalars(select(Org).where(Org.name == name)).first() if is_slug(name) else None
    if org is None:
        raise NotFound("No organization by that name.")
    return org


def get_team(db: Session, org: Org, name: str) -> Team:
    team = None
    if is_slug(name):
        team = db.scalars(select(Team).where(Team.org_id == org.id, Team.name == name)).first()
    if team is None:
        raise NotFound("No team by that name.")
    return team


def default_team(db: Session, org_id: int) -> Team:
    return db.scalars(select(Team).where(Team.org_id == org_id, Team.is_default)).one()


def membership(db: Session, org_id: int, user_id: int) -> Membership | None:
    return db.scalars(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    ).first()


def _flush_or_conflict(db: Session, message: str, code: str) -> None:
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict(message, code=code) from exc


def create_org(
    db: Session,
    actor: Actor,
    name: str,
    display_name: str | None,
    admin: User,
) -> Org:
    """Create an org with ``admin`` as its first admin and its default team; the
    admin's account must be verified (:func:`join`), even when an operator names it."""
    users.require_verified(admin)
    org = Org(name=check_org_name(name), display_name=display_name_or(display_name, name))
    db.add(org)
    _flush_or_conflict(db, "That organization name is taken.", "name_taken")
    db.add(Team(org_id=org.id, name=DEFAULT_TEAM, display_name="Everyone", is_default=True))
    db.flush()
    join(db, org.id, admin.id, OrgRole.ADMIN)
    audit.record(db, actor, "org.created", org_id=org.id, target=org.name)
    return org


def join(
    db: Session,
    org_id: int,
    user_id: int,
    role: OrgRole,
    *,
    role_source: str = "manual",
    team_id: int | None = None,
) -> Membership:
    """Make ``user_id`` a member with ``role``, placed in the default team (or
    ``team_id``, an org's configured default team for newcomers). An unverified
    account holds no membership (:func:`~hubgate.accounts.users.require_verified`)."""
    users.require_verified(db.get_one(User, user_id))
    member = Membership(org_id=org_id, user_id=user_id, role=role.label, role_source=role_source)
    db.add(member)
    _flush_or_conflict(db, "That person is already a member.", "already_member")
    team = team_id if team_id is not None else default_team(db, org_id).id
    team_role = DEFAULT_TEAM_ROLE[role].label
    db.add(TeamMembership(team_id=team, user_id=user_id, role=team_role, source="default"))
    db.flush()
    return member


def add_member(
    db: Session, actor: Actor, principal: Principal, org: Org, user: User, role: OrgRole
) -> Membership:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    member = join(db, org.id, user.id, role)
    audit.record(
        db, actor, "member.added", org_id=org.id, target=_who(user), data={"role": role.label}
    )
    return member


def _who(user: User) -> str:
    return user.emails[0].address if user.emails else f"user:{user.id}"


def admin_count(db: Session, org_id: int) -> int:
    statement = select(func.count()).where(
        Membership.org_id == org_id, Membership.role == OrgRole.ADMIN.label
    )
    if db.get_bind().dialect.name == "postgresql":
        locked = select(Membership.id).where(Membership.org_id == org_id).with_for_update()
        db.execute(locked)
    return int(db.scalar(statement) or 0)


def _protect_last_admin(db: Session, member: Membership, new_role: OrgRole | None) -> None:
    if member.role != OrgRole.ADMIN.label or new_role is OrgRole.ADMIN:
        return
    if admin_count(db, member.org_id) <= 1:
        raise Conflict("An organization must keep at least one admin.", code="last_admin")


def _member_or_404(db: Session, org: Org, user: User) -> Membership:
    member = membership(db, org.id, user.id)
    if member is None:
        raise NotFound("That person is not a member of this organization.")
    return member


def set_role(
    db: Session, actor: Actor, principal: Principal, org: Org, user: User, role: OrgRole
) -> Membership:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    member = _member_or_404(db, org, user)
    _protect_last_admin(db, member, role)
    old, member.role = member.role, role.label
    member.role_source = "manual"
    audit.record(
        db, actor, "member.role_changed", org_id=org.id, target=_who(user),
        data={"from": old, "to": role.label},
    )  # fmt: skip
    return member


def remove_member(db: Session, actor: Actor, principal: Principal, org: Org, user: User) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    member = _member_or_404(db, org, user)
    _protect_last_admin(db, member, None)
    org_teams = select(Team.id).where(Team.org_id == org.id)
    db.execute(
        delete(TeamMembership).where(
            TeamMembership.user_id == user.id, TeamMembership.team_id.in_(org_teams)
        )
    )
    db.delete(member)
    audit.record(db, actor, "member.removed", org_id=org.id, target=_who(user))


def create_team(
    db: Session, actor: Actor, principal: Principal, org: Org, name: str, display_name: str | None
) -> Team:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    team = Team(
        org_id=org.id, name=check_team_name(name), display_name=display_name_or(display_name, name)
    )
    db.add(team)
    _flush_or_conflict(db, "A team by that name exists.", "name_taken")
    audit.record(db, actor, "team.created", org_id=org.id, target=team.name)
    return team


def delete_team(db: Session, actor: Actor, principal: Principal, org: Org, team: Team) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    if team.is_default:
        raise Conflict("The default team cannot be deleted.", code="default_team")
    db.delete(team)
    audit.record(db, actor, "team.deleted", org_id=org.id, target=team.name)


def _refuse_scim_managed(db: Session, team: Team) -> None:
    """A team linked to a SCIM Group changes its members only through SCIM."""
    linked = select(ScimGroupTeam.group_id).where(ScimGroupTeam.team_id == team.id).limit(1)
    if db.scalar(linked) is not None:
        raise Forbidden(
            "This team's members come from your identity provider (SCIM); change them there.",
            code="team_scim_managed",
        )


def set_team_member(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    team: Team,
    user: User,
    role: TeamRole,
) -> TeamMembership:
    require(principal, Action.ADMIN, TeamTarget(org.id, team.id))
    _refuse_scim_managed(db, team)
    _member_or_404(db, org, user)
    row = db.scalars(
        select(TeamMembership).where(
            TeamMembership.team_id == team.id, TeamMembership.user_id == user.id
        )
    ).first()
    old = row.role if row else None
    if row is None:
        row = TeamMembership(team_id=team.id, user_id=user.id, role=role.label)
        db.add(row)
    row.role, row.source = role.label, "manual"
    db.flush()
    audit.record(
        db, actor, "team.member_set", org_id=org.id, target=f"{team.name}/{_who(user)}",
        data={"from": old, "to": role.label},
    )  # fmt: skip
    return row


def remove_team_member(
    db: Session, actor: Actor, principal: Principal, org: Org, team: Team, user: User
) -> None:
    require(principal, Action.ADMIN, TeamTarget(org.id, team.id))
    _refuse_scim_managed(db, team)
    deleted = db.execute(
        delete(TeamMembership).where(
            TeamMembership.team_id == team.id, TeamMembership.user_id == user.id
        )
    )
    if not getattr(deleted, "rowcount", 0):
        raise NotFound("That person is not in this team.")
    audit.record(
        db, actor, "team.member_removed", org_id=org.id, target=f"{team.name}/{_who(user)}"
    )
