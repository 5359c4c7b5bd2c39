"""Organizations, members and teams (DESIGN.md §1).

Every function runs inside the caller's transaction and never commits. Access
questions go to :func:`hubgate.principals.require`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgRole, OrgTarget, Principal, TeamRole, TeamTarget
from hubgate.accounts import users
from hubgate.audit import Actor
from hubgate.db.models import Membership, Org, ScimGroupTeam, Team, TeamMembership, User
from hubgate.errors import Conflict, Forbidden, NotFound
from hubgate.names import check_org_name, check_team_name, is_slug
from hubgate.names import display_name as display_name_or
from hubgate.orgs import queries
from hubgate.principals import require

__all__ = [
    "DEFAULT_TEAM",
    "DEFAULT_TEAM_ROLE",
    "TeamRef",
    "UserRef",
    "add_member",
    "admin_count",
    "create_org",
    "create_team",
    "delete_team",
    "get_org",
    "get_team",
    "join",
    "last_admin_deprovisioned",
    "loses_last_admin",
    "mapped_by",
    "membership",
    "remove_member",
    "remove_team_member",
    "set_role",
    "set_team_member",
    "unpin",
]

UserRef = User | Callable[[], User]
"""A person, or how to find them (raising if there is no such person): looked up
only once the access check passed, so a caller without access learns nothing
about accounts from the answer."""
TeamRef = Team | Callable[[], Team]
"""A team, or how to find it: looked up once the access check passed."""

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
    role_detail: str | None = None,
    team_id: int | None = None,
) -> Membership:
    """Make ``user_id`` a member with ``role`` (given by ``role_source``, with what
    gave it in ``role_detail``), placed in the default team (or ``team_id``, an
    org's configured default team for newcomers). An unverified account holds no
    membership (:func:`~hubgate.accounts.users.require_verified`)."""
    users.require_verified(db.get_one(User, user_id))
    member = Membership(
        org_id=org_id, user_id=user_id, role=role.label, role_source=role_source,
        role_detail=role_detail,
    )  # fmt: skip
    db.add(member)
    _flush_or_conflict(db, "That person is already a member.", "already_member")
    team = team_id if team_id is not None else default_team(db, org_id).id
    team_role = DEFAULT_TEAM_ROLE[role].label
    db.add(TeamMembership(team_id=team, user_id=user_id, role=team_role, source="default"))
    db.flush()
    return member


def _person(user: UserRef) -> User:
    return user if isinstance(user, User) else user()


def add_member(
    db: Session, actor: Actor, principal: Principal, org: Org, user: UserRef, role: OrgRole
) -> Membership:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    user = _person(user)
    member = join(db, org.id, user.id, role)
    audit.record(
        db, actor, "member.added", org_id=org.id, target=_who(user), data={"role": role.label}
    )
    return member


def _who(user: User) -> str:
    return user.emails[0].address if user.emails else f"user:{user.id}"


def admin_count(db: Session, org_id: int) -> int:
    """The org's ACTIVE admins: a member SCIM deactivated is no admin (DESIGN.md §1).
    On PostgreSQL the org's memberships are locked first, so two demotions at once
    cannot both see a second admin."""
    if db.get_bind().dialect.name == "postgresql":
        locked = select(Membership.id).where(Membership.org_id == org_id).with_for_update()
        db.execute(locked)
    return queries.active_admins(db, org_id)


def loses_last_admin(db: Session, member: Membership, new_role: OrgRole | None) -> bool:
    """The last-admin rule, the one place it is written: whether giving ``member``
    ``new_role`` (None: removing or deactivating them) leaves the org without an
    active admin. Admins may refuse it (:func:`set_role`, :func:`remove_member`),
    role mappings keep the admin (:func:`hubgate.sso.mappings.apply_role`), and SCIM
    deprovisions anyway and says so (:func:`last_admin_deprovisioned`)."""
    if member.role != OrgRole.ADMIN.label or new_role is OrgRole.ADMIN:
        return False
    if member.deactivated_at is not None:
        return False
    return admin_count(db, member.org_id) <= 1


def _protect_last_admin(db: Session, member: Membership, new_role: OrgRole | None) -> None:
    if loses_last_admin(db, member, new_role):
        raise Conflict(
            "An organization must keep at least one active admin.",
            code="last_admin",
            audit_org=member.org_id,
        )


def last_admin_deprovisioned(db: Session, actor: Actor, org_id: int, who: str, how: str) -> None:
    """SCIM cut the org's last active admin (the IdP decides): a warning in the
    audit log, in the same transaction. The org pages show a banner for as long
    as no active admin exists (:func:`hubgate.orgs.queries.admin_gap`)."""
    audit.record(
        db, actor, "member.last_admin_deprovisioned", org_id=org_id, target=who,
        reason="last_admin", data={"level": "warning", "member": who, "how": how},
    )  # fmt: skip


def _member_or_404(db: Session, org: Org, user: User) -> Membership:
    member = membership(db, org.id, user.id)
    if member is None:
        raise NotFound("That person is not a member of this organization.")
    return member


def _refuse_deactivated(member: Membership) -> None:
    if member.deactivated_at is not None:
        raise Conflict(
            "This member was deactivated by SCIM; their identity provider reactivates them "
            "(active=true). Give the role to an active member instead.",
            code="member_deactivated",
            audit_org=member.org_id,
        )


def mapped_by(member: Membership) -> str | None:
    """What mapping gives the member's role at every sign-in or SCIM push, or None
    when the role is not a mapping's (set by hand, pinned, invitation, default)."""
    if member.role_pinned:
        return None
    if member.role_source == "mapping":
        return member.role_detail or "A role mapping"
    if member.role_source == "scim" and member.role_detail:
        return f"groups={member.role_detail}"
    return None


def _refuse_mapped(member: Membership) -> None:
    by = mapped_by(member)
    if by is not None:
        raise Conflict(
            f"{by} gives this person {member.role} at every sign-in; pin the role to keep yours.",
            code="role_mapped",
            audit_org=member.org_id,
        )


def set_role(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    user: UserRef,
    role: OrgRole,
    *,
    pin: bool = False,
) -> Membership:
    """Set the member's role by hand. A role a mapping gives is refused
    (``role_mapped``) unless ``pin``: a pinned role stays until it is unpinned
    (:func:`unpin`), whatever the mappings say."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    user = _person(user)
    member = _member_or_404(db, org, user)
    _refuse_deactivated(member)
    if not pin:
        _refuse_mapped(member)
    _protect_last_admin(db, member, role)
    old, was, member.role = member.role, mapped_by(member), role.label
    member.role_source, member.role_detail = "manual", None
    audit.record(
        db, actor, "member.role_changed", org_id=org.id, target=_who(user),
        data={"from": old, "to": role.label},
    )  # fmt: skip
    if pin and not member.role_pinned:
        member.role_pinned = True
        audit.record(
            db, actor, "member.role_pinned", org_id=org.id, target=_who(user),
            data={"role": role.label, "mapping": was},
        )  # fmt: skip
    return member


def unpin(db: Session, actor: Actor, principal: Principal, org: Org, user: UserRef) -> Membership:
    """The mappings decide the member's role again, from their next sign-in or SCIM
    group change; the role stays as it is until then."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    user = _person(user)
    member = _member_or_404(db, org, user)
    if not member.role_pinned:
        raise Conflict("That member's role is not pinned.", code="not_pinned", audit_org=org.id)
    member.role_pinned = False
    audit.record(
        db, actor, "member.role_unpinned", org_id=org.id, target=_who(user),
        data={"role": member.role},
    )  # fmt: skip
    return member


def remove_member(db: Session, actor: Actor, principal: Principal, org: Org, user: UserRef) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    user = _person(user)
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


def delete_team(db: Session, actor: Actor, principal: Principal, org: Org, team: TeamRef) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    team = team if isinstance(team, Team) else team()
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
    user: UserRef,
    role: TeamRole,
) -> TeamMembership:
    require(principal, Action.ADMIN, TeamTarget(org.id, team.id))
    user = _person(user)
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
    db: Session, actor: Actor, principal: Principal, org: Org, team: Team, user: UserRef
) -> None:
    require(principal, Action.ADMIN, TeamTarget(org.id, team.id))
    user = _person(user)
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
