"""What a SCIM member's Groups grant in the org: a role, from the org's role
mappings over the Groups' display names, and places in the teams the Groups are
linked to (:mod:`hubgate.provisioning.groups`). Store code only: no SCIM document
is read here, so the role mappings' commands do not load the SCIM models."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate.access import TeamRole
from hubgate.audit import Actor
from hubgate.db.models import Membership, Org, ScimGroup, ScimGroupMember, ScimGroupTeam, ScimUser
from hubgate.sso import mappings, policy

__all__ = ["grouped_users", "recompute"]


def recompute(db: Session, actor: Actor, org: Org, scim_user_ids: Iterable[str]) -> None:
    """Each member's role (from the org's role mappings over their SCIM groups' names)
    and SCIM-managed team places (the highest role of their linked groups)."""
    settings = policy.policy_of(db, org.id)
    roles, _teams = mappings.load_rules(db, org.id)
    roles = [r for r in roles if r.attribute == mappings.GROUPS]
    for scim_user_id in scim_user_ids:
        user = db.get(ScimUser, scim_user_id)
        member = _membership(db, org, user.user_id) if user else None
        if user is None or member is None:
            continue
        names = _group_names(db, scim_user_id)
        won = mappings.winning_rule(r for r in roles if r.value in names)
        mapped, group = (won.role, won.value) if won else (None, None)
        mappings.apply_role(db, actor, org.id, member, mapped, settings.default_role, "scim", group)
        mappings.sync_teams(db, org.id, user.user_id, _linked_teams(db, scim_user_id), "scim")


def grouped_users(db: Session, org: Org) -> list[str]:
    """The ids of the org's SCIM Users that are in at least one Group."""
    statement = (
        select(ScimUser.id)
        .join(ScimGroupMember, ScimGroupMember.scim_user_id == ScimUser.id)
        .where(ScimUser.org_id == org.id)
        .distinct()
    )
    return list(db.scalars(statement))


def _membership(db: Session, org: Org, user_id: int) -> Membership | None:
    return db.scalars(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user_id)
    ).first()


def _group_names(db: Session, scim_user_id: str) -> set[str]:
    statement = (
        select(ScimGroup.display_name)
        .join(ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id)
        .where(ScimGroupMember.scim_user_id == scim_user_id)
    )
    return set(db.scalars(statement))


def _linked_teams(db: Session, scim_user_id: str) -> dict[int, TeamRole]:
    statement = (
        select(ScimGroupTeam.team_id, ScimGroupTeam.team_role)
        .join(ScimGroupMember, ScimGroupMember.group_id == ScimGroupTeam.group_id)
        .where(ScimGroupMember.scim_user_id == scim_user_id)
    )
    granted: dict[int, TeamRole] = {}
    for team_id, role in db.execute(statement):
        granted[team_id] = max(granted.get(team_id, TeamRole.READ), TeamRole.parse(role))
    return granted
