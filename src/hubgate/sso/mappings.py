"""Role mapping and team (resource-group) mapping (DESIGN.md §1 "Policy").

A mapping reads an attribute of the verified Identity (``groups``, or a raw
attribute by its name: an OIDC claim, a SAML attribute URI) and grants, when one
of its values matches, an org role (the most privileged match wins) or a team
place (additive). Both are recomputed at every SSO sign-in: what a mapping gave
is taken back once the IdP stops asserting its value, what an admin set by hand
stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, literal, null, select, union_all, update
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgRole, OrgTarget, Principal, TeamRole
from hubgate.audit import Actor
from hubgate.db.engine import core
from hubgate.db.models import Membership, Org, RoleMapping, Team, TeamMapping, TeamMembership
from hubgate.errors import BadRequest, Conflict, HubgateError
from hubgate.orgs import service
from hubgate.orgs.queries import primary_email
from hubgate.principals import require
from hubgate.sso.identity import Identity

__all__ = [
    "GROUPS",
    "apply_role",
    "Grants",
    "RoleRule",
    "TeamRule",
    "describe",
    "grants_for",
    "load_rules",
    "pinned_members",
    "Places",
    "preview",
    "role_settled",
    "role_target",
    "rules_and_places",
    "set_role_mappings",
    "set_team_mappings",
    "sync_teams",
    "team_changes",
    "unsettled_role_rules",
    "winning_rule",
]

GROUPS = "groups"
MAX_RULES = 500


@dataclass(frozen=True, slots=True)
class RoleRule:
    attribute: str
    value: str
    role: OrgRole


@dataclass(frozen=True, slots=True)
class TeamRule:
    attribute: str
    value: str
    team_id: int
    team_role: TeamRole


@dataclass(frozen=True, slots=True)
class Grants:
    """What the mappings give one identity: a role (if any rule matched) and teams."""

    role: OrgRole | None
    teams: dict[int, TeamRole]
    rule: RoleRule | None = None
    """The rule that gave ``role``: the first of the most privileged matches."""

    @property
    def detail(self) -> str | None:
        """What gave the role, as the members page shows it: ``groups=ml-admins``."""
        return f"{self.rule.attribute}={self.rule.value}" if self.rule else None


def values_of(identity: Identity, attribute: str) -> frozenset[str]:
    if attribute == GROUPS:
        return frozenset(identity.groups)
    return frozenset(identity.attributes.get(attribute, ()))


def grants_for(identity: Identity, roles: Iterable[RoleRule], teams: Iterable[TeamRule]) -> Grants:
    """Pure: the most privileged matching role, and each matching team at its
    highest matching team role."""
    cache: dict[str, frozenset[str]] = {}

    def matches(attribute: str, value: str) -> bool:
        if attribute not in cache:
            cache[attribute] = values_of(identity, attribute)
        return value in cache[attribute]

    won = winning_rule(r for r in roles if matches(r.attribute, r.value))
    granted: dict[int, TeamRole] = {}
    for rule in teams:
        if matches(rule.attribute, rule.value):
            granted[rule.team_id] = max(granted.get(rule.team_id, rule.team_role), rule.team_role)
    return Grants(won.role if won else None, granted, won)


def winning_rule(matched: Iterable[RoleRule]) -> RoleRule | None:
    """The most privileged of the matched rules (the first of them on a tie)."""
    return max(matched, key=lambda r: r.role, default=None)


Places = dict[int, tuple[str, str]]
"""A user's team places in an org: team id -> (team role, the source that gave it)."""


def load_rules(db: Session, org_id: int) -> tuple[list[RoleRule], list[TeamRule]]:
    """The org's role and team mappings, each in the order they were set, in one query."""
    roles, teams, _ = _read(db, _RULES, {"org_id": org_id})
    return roles, teams


def rules_and_places(
    db: Session, org_id: int, user_id: int
) -> tuple[list[RoleRule], list[TeamRule], Places]:
    """:func:`load_rules` and the user's team places in the org (for
    :func:`sync_teams`), in one query: every SSO sign-in reads both."""
    return _read(db, _RULES_AND_PLACES, {"org_id": org_id, "user_id": user_id})


def _read(
    db: Session, statement: Any, params: dict[str, int]
) -> tuple[list[RoleRule], list[TeamRule], Places]:
    roles: list[RoleRule] = []
    teams: list[TeamRule] = []
    places: Places = {}
    for kind, attribute, value, role, team_id, _ in core(db).execute(statement, params):
        if kind == "role":
            roles.append(RoleRule(attribute, value, OrgRole.parse(role)))
        elif kind == "team":
            teams.append(TeamRule(attribute, value, team_id, TeamRole.parse(role)))
        else:
            places[team_id] = (role, value)
    return roles, teams, places


_R, _T = RoleMapping.__table__, TeamMapping.__table__
_TM, _TEAMS = TeamMembership.__table__, Team.__table__
# Rows of one shape: (kind, attribute, value, role, team id, id).
_ROLE_RULES = select(
    literal("role").label("kind"), _R.c.attribute, _R.c.value, _R.c.role,
    null().label("team_id"), _R.c.id,
).where(_R.c.org_id == bindparam("org_id"))  # fmt: skip
_TEAM_RULES = select(
    literal("team"), _T.c.attribute, _T.c.value, _T.c.team_role, _T.c.team_id, _T.c.id
).where(_T.c.org_id == bindparam("org_id"))
# A place carries its source where a rule carries its value.
_USER_PLACES = (
    select(literal("place"), null(), _TM.c.source, _TM.c.role, _TM.c.team_id, null())
    .join(_TEAMS, _TEAMS.c.id == _TM.c.team_id)
    .where(_TM.c.user_id == bindparam("user_id"), _TEAMS.c.org_id == bindparam("org_id"))
)
_RULES = union_all(_ROLE_RULES, _TEAM_RULES).order_by("id")
_RULES_AND_PLACES = union_all(_ROLE_RULES, _TEAM_RULES, _USER_PLACES).order_by("id")


def _check_rule_text(attribute: str, value: str) -> None:
    for text in (attribute, value):
        if not text or len(text) > 256 or any(ord(c) < 32 for c in text):
            raise BadRequest(
                "Mapping attributes and values are 1 to 256 printable characters.",
                code="invalid_mapping",
            )


def set_role_mappings(
    db: Session, actor: Actor, principal: Principal, org: Org, rules: Sequence[RoleRule]
) -> None:
    """Replace the org's role mappings. A set that leaves no way to be admin (no
    rule grants admin and no admin holds the role by hand) is refused. Members
    provisioned by SCIM are not remapped here: callers go through
    :func:`hubgate.provisioning.mappings.set_role_mappings`, which does both."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    if len(rules) > MAX_RULES:
        raise BadRequest(f"At most {MAX_RULES} role mappings.", code="invalid_mapping")
    for rule in rules:
        _check_rule_text(rule.attribute, rule.value)
    refused = unsettled_role_rules(rules, lambda: _manual_admin(db, org))
    if refused is not None:
        raise refused
    db.execute(delete(RoleMapping).where(RoleMapping.org_id == org.id))
    db.add_all(
        RoleMapping(org_id=org.id, attribute=r.attribute, value=r.value, role=r.role.label)
        for r in rules
    )
    audit.record(
        db, actor, "sso.settings_changed", org_id=org.id, target=org.name,
        data={"role_mappings": [[r.attribute, r.value, r.role.label] for r in rules]},
    )  # fmt: skip


def unsettled_role_rules(
    rules: Sequence[RoleRule], manual_admin: Callable[[], bool]
) -> HubgateError | None:
    """Pure but for ``manual_admin`` (asked only when it matters: whether an active
    admin holds the role by hand): why a set of role mappings is refused, if it
    is. A set must keep a way to be admin, and map each attribute value once."""
    if rules and not any(r.role is OrgRole.ADMIN for r in rules) and not manual_admin():
        return Conflict(
            "These mappings leave no way to be an admin: map a group to admin, or keep an "
            "admin whose role was set by hand.",
            code="no_admin_path",
        )
    if len({(r.attribute, r.value) for r in rules}) != len(rules):
        return BadRequest("Each attribute value maps to one role.", code="invalid_mapping")
    return None


def _manual_admin(db: Session, org: Org) -> bool:
    statement = select(Membership.id).where(
        Membership.org_id == org.id, Membership.role == OrgRole.ADMIN.label,
        Membership.role_source != "mapping", Membership.deactivated_at.is_(None),
    )  # fmt: skip
    return db.scalar(statement.limit(1)) is not None


def set_team_mappings(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    rules: Sequence[tuple[str, str, str, TeamRole]],
) -> list[TeamRule]:
    """Replace the org's team mappings: (attribute, value, team name, team role)."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    if len(rules) > MAX_RULES:
        raise BadRequest(f"At most {MAX_RULES} team mappings.", code="invalid_mapping")
    teams = {t.name: t.id for t in db.scalars(select(Team).where(Team.org_id == org.id))}
    resolved: list[TeamRule] = []
    for attribute, value, team, role in rules:
        _check_rule_text(attribute, value)
        if team not in teams:
            raise BadRequest(f"No team named {team[:64]!r}.", code="invalid_mapping")
        resolved.append(TeamRule(attribute, value, teams[team], role))
    if len({(r.attribute, r.value, r.team_id) for r in resolved}) != len(resolved):
        raise BadRequest("Each attribute value maps to a team once.", code="invalid_mapping")
    db.execute(delete(TeamMapping).where(TeamMapping.org_id == org.id))
    db.add_all(
        TeamMapping(
            org_id=org.id,
            attribute=r.attribute,
            value=r.value,
            team_id=r.team_id,
            team_role=r.team_role.label,
        )  # fmt: skip
        for r in resolved
    )
    audit.record(
        db, actor, "sso.settings_changed", org_id=org.id, target=org.name,
        data={"team_mappings": [[a, v, t, r.label] for a, v, t, r in rules]},
    )  # fmt: skip
    return resolved


def sync_teams(
    db: Session,
    org_id: int,
    user_id: int,
    granted: dict[int, TeamRole],
    source: str = "mapping",
    places: Places | None = None,
) -> tuple[list[int], list[int]]:
    """Make the user's team places from ``source`` (the SSO mappings, or SCIM
    groups) equal ``granted``; places from elsewhere stay as they are. ``places``,
    when given, are the user's places as read in this transaction. Returns (added
    or changed, removed) team ids."""
    if places is None:
        places = _read(db, _USER_PLACES, {"user_id": user_id, "org_id": org_id})[2]
    added, updated, removed = team_changes(places, granted, source)
    if removed:
        db.execute(
            delete(TeamMembership).where(
                TeamMembership.user_id == user_id, TeamMembership.team_id.in_(removed)
            )
        )
    for team_id, role in added.items():
        db.add(TeamMembership(team_id=team_id, user_id=user_id, role=role.label, source=source))
    for team_id, role in updated.items():
        db.execute(
            update(TeamMembership)
            .where(TeamMembership.team_id == team_id, TeamMembership.user_id == user_id)
            .values(role=role.label)
        )
    changed = [t for t in granted if t in added or t in updated]
    if changed:
        db.flush()
    return changed, removed


def team_changes(
    places: Places, granted: dict[int, TeamRole], source: str
) -> tuple[dict[int, TeamRole], dict[int, TeamRole], list[int]]:
    """Pure: what makes the places ``source`` gave equal ``granted``: (places to
    add, places from ``source`` whose role changes, places from ``source`` to
    remove). A place from elsewhere (set by hand, the default team) is never
    touched, nor taken over."""
    removed = [t for t, (_, given_by) in places.items() if given_by == source and t not in granted]
    added = {t: role for t, role in granted.items() if t not in places}
    updated = {
        t: role
        for t, role in granted.items()
        if t in places and places[t][1] == source and places[t][0] != role.label
    }
    return added, updated, removed


def preview(
    db: Session,
    org_id: int,
    groups: Sequence[str],
    attributes: dict[str, list[str]],
    *,
    pins: bool = False,
) -> dict[str, object]:
    """What the current mappings would give a person with these groups and
    attributes: "role write and teams x, y" (the settings page's preview), the
    rule that gives the role, and with ``pins`` (for the org's admins, not the
    setup portal) the pinned members whose role the mappings leave alone."""
    identity = Identity(
        connection_id=0, subject="preview", email=None, email_verified=False,
        display_name=None, groups=tuple(groups),
        attributes={k: tuple(v) for k, v in attributes.items()},
    )  # fmt: skip
    grants = grants_for(identity, *load_rules(db, org_id))
    names = {t.id: t.name for t in db.scalars(select(Team).where(Team.org_id == org_id))}
    found: dict[str, object] = {
        "role": grants.role.label if grants.role else None,
        "teams": {names[t]: r.label for t, r in sorted(grants.teams.items())},
    }
    if pins:
        found["role_rule"] = grants.detail
        found["pinned"] = pinned_members(db, org_id)
    return found


def pinned_members(db: Session, org_id: int) -> list[dict[str, str]]:
    """The members whose role an admin pinned: the mappings do not change it."""
    rows = db.execute(
        select(Membership.user_id, Membership.role)
        .where(Membership.org_id == org_id, Membership.role_pinned.is_(True))
        .order_by(Membership.id)
    )
    return [{"email": primary_email(db, u), "role": role} for u, role in rows]


def describe(db: Session, org_id: int) -> dict[str, list[dict[str, str]]]:
    roles, teams = load_rules(db, org_id)
    names = {t.id: t.name for t in db.scalars(select(Team).where(Team.org_id == org_id))}
    return {
        "role_mappings": [
            {"attribute": r.attribute, "value": r.value, "role": r.role.label} for r in roles
        ],
        "team_mappings": [
            {
                "attribute": r.attribute,
                "value": r.value,
                "team": names[r.team_id],
                "team_role": r.team_role.label,
            }  # fmt: skip
            for r in teams
        ],
    }


class RoleHolder(Protocol):
    """What deciding a member's role reads: a Membership row, or its columns."""

    @property
    def role(self) -> str: ...
    @property
    def role_source(self) -> str: ...
    @property
    def role_detail(self) -> str | None: ...
    @property
    def role_pinned(self) -> bool: ...
    @property
    def invited_role(self) -> str | None: ...


Target = tuple[OrgRole, str, str | None]
"""A role, where it comes from (a Membership ``role_source``) and what gave it."""


def role_target(
    member: RoleHolder,
    mapped: OrgRole | None,
    default_role: OrgRole,
    source: str = "mapping",
    detail: str | None = None,
) -> Target | None:
    """The role the member should hold, where it comes from and what gave it
    (``detail``, the matched mapping), or None to leave it: a pinned role stays;
    else the mapped role; with no match, a role that ``source`` gave falls back to
    the invitation's role, else the default; a role set otherwise stays."""
    if member.role_pinned:
        return None
    if mapped is not None:
        return mapped, source, detail
    if member.role_source == source:
        if member.invited_role:
            return OrgRole.parse(member.invited_role), "invitation", None
        return default_role, "default", None
    return None


def role_settled(
    member: RoleHolder,
    mapped: OrgRole | None,
    default_role: OrgRole,
    source: str = "mapping",
    detail: str | None = None,
) -> bool:
    """Whether :func:`apply_role` would change nothing."""
    target = role_target(member, mapped, default_role, source, detail)
    now = (member.role, member.role_source, member.role_detail)
    return target is None or (target[0].label, target[1], target[2]) == now


def apply_role(
    db: Session,
    actor: Actor,
    org_id: int,
    member: Membership,
    mapped: OrgRole | None,
    default_role: OrgRole,
    source: str = "mapping",
    detail: str | None = None,
) -> None:
    """Give the member :func:`role_target`'s role (remembered as coming from where it
    came, and what gave it). A pinned role is left alone; the org's last active
    admin is never demoted (audited)."""
    target = role_target(member, mapped, default_role, source, detail)
    if target is None:
        return
    role, given_by, detail = target
    if role.label == member.role:
        member.role_source, member.role_detail = given_by, detail
        return
    where = f"user:{member.user_id}"
    if service.loses_last_admin(db, member, role):
        audit.record(
            db, actor, "role.mapped", org_id=org_id, target=where, reason="last_admin",
            data={"kept": member.role, "mapped": role.label},
        )  # fmt: skip
        return
    old, member.role = member.role, role.label
    member.role_source, member.role_detail = given_by, detail
    audit.record(
        db, actor, "role.mapped", org_id=org_id, target=where,
        data={"from": old, "to": role.label, "source": given_by},
    )  # fmt: skip
