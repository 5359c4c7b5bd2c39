"""Invitations and the join link (DESIGN.md §1 "Policy").

An invitation names an email, an org role and teams; it is accepted only by
signing in through the org's SSO with that email. The join link runs SSO and
makes the person a member with the default role; rotating it kills the old one.
Only the link's SHA-256 is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.access import Action, OrgRole, OrgTarget, Principal, TeamRole
from hubgate.accounts.emails import accepted_email, normalize_email
from hubgate.audit import Actor
from hubgate.db.models import Invitation, Org, OrgSso, Team, TeamMembership, User
from hubgate.db.types import utcnow
from hubgate.errors import BadRequest, NotFound
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sso import policy as sso_policy

__all__ = [
    "INVITATION_TTL",
    "accept",
    "describe",
    "disable_join_link",
    "invite",
    "join_org",
    "list_for",
    "pending_for",
    "revoke",
    "rotate_join_link",
]

INVITATION_TTL = timedelta(days=14)
MAX_JOIN_LINK_TTL = timedelta(days=365)
_MAX_PENDING = 1000


def invite(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    email: str,
    role: OrgRole,
    teams: Sequence[tuple[str, TeamRole]] = (),
) -> Invitation:
    """Invite ``email``; inviting it again replaces the earlier invitation."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    address = accepted_email(email, rt.settings.env)
    resolved = _team_ids(db, org, teams)
    db.execute(delete(Invitation).where(Invitation.org_id == org.id, Invitation.email == address))
    if len(list_for(db, org, rt.now())) >= _MAX_PENDING:
        raise BadRequest(f"At most {_MAX_PENDING} pending invitations.", code="too_many")
    row = Invitation(
        org_id=org.id, email=address, role=role.label, teams=json.dumps(resolved),
        invited_by=actor.label, created_at=rt.now(), expires_at=rt.now() + INVITATION_TTL,
    )  # fmt: skip
    db.add(row)
    db.flush()
    _mail_invitation(db, rt, org, row)
    audit.record(
        db, actor, "invitation.created", org_id=org.id, target=address,
        data={"role": role.label, "teams": [[n, r.label] for n, r in teams]},
    )  # fmt: skip
    return row


def _mail_invitation(db: Session, rt: Runtime, org: Org, row: Invitation) -> None:
    """The invitation is accepted by signing in through the org's SSO: the mail
    carries that sign-in link (the outbox, in this transaction)."""
    link = rt.url(f"/sso/{org.name}/start")
    body = (
        f"{row.invited_by} invited you to {org.display_name} ({org.name}) on hubgate "
        f"with the role {row.role}.\n\n"
        f"Accept by signing in through {org.display_name}'s single sign-on with "
        f"{row.email}:\n\n{link}\n\n"
        f"The invitation expires on {row.expires_at:%Y-%m-%d}. Not expecting it? "
        "Ignore this mail.\n"
    )
    rt.mailer.send(db, row.email, f"You are invited to {org.display_name} on hubgate", body)


def _team_ids(
    db: Session, org: Org, teams: Sequence[tuple[str, TeamRole]]
) -> list[tuple[int, str]]:
    if len(teams) > 50:
        raise BadRequest("At most 50 teams per invitation.")
    known = {t.name: t.id for t in db.scalars(select(Team).where(Team.org_id == org.id))}
    missing = [name for name, _role in teams if name not in known]
    if missing:
        raise BadRequest(f"No team named {missing[0][:64]!r}.", code="invalid_team")
    return [(known[name], role.label) for name, role in teams]


def revoke(db: Session, actor: Actor, principal: Principal, org: Org, email: str) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    address = normalize_email(email)
    gone = db.execute(
        delete(Invitation).where(Invitation.org_id == org.id, Invitation.email == address)
    )
    if not getattr(gone, "rowcount", 0):
        raise NotFound("No invitation for that email.")
    audit.record(db, actor, "invitation.revoked", org_id=org.id, target=address)


def list_for(db: Session, org: Org, now: datetime) -> list[Invitation]:
    statement = select(Invitation).where(Invitation.org_id == org.id, Invitation.expires_at > now)
    return list(db.scalars(statement.order_by(Invitation.id)))


def describe(db: Session, row: Invitation) -> dict[str, Any]:
    names = {t.id: t.name for t in db.scalars(select(Team).where(Team.org_id == row.org_id))}
    teams = [[names.get(team_id, "?"), role] for team_id, role in json.loads(row.teams)]
    return {
        "email": row.email, "role": row.role, "teams": teams, "invited_by": row.invited_by,
        "expires_at": row.expires_at.isoformat(),
    }  # fmt: skip


def pending_for(db: Session, org_id: int, addresses: Sequence[str]) -> Invitation | None:
    """The live invitation for one of the person's verified addresses, if any."""
    if not addresses:
        return None
    statement = select(Invitation).where(
        Invitation.org_id == org_id, Invitation.email.in_(addresses),
        Invitation.expires_at > utcnow(),
    )  # fmt: skip
    return db.scalars(statement.order_by(Invitation.id)).first()


def accept(db: Session, actor: Actor, org: Org, invitation: Invitation, user: User) -> None:
    """Give the invited teams (as invitation places), then burn the invitation."""
    org_teams = {t.id for t in db.scalars(select(Team).where(Team.org_id == org.id))}
    current = {
        row.team_id
        for row in db.scalars(select(TeamMembership).where(TeamMembership.user_id == user.id))
    }
    for team_id, role in json.loads(invitation.teams):
        if team_id in org_teams and team_id not in current:
            db.add(TeamMembership(team_id=team_id, user_id=user.id, role=role, source="invitation"))
    db.delete(invitation)
    db.flush()
    audit.record(db, actor, "invitation.accepted", org_id=org.id, target=invitation.email)


# -- the join link -------------------------------------------------------------------


def rotate_join_link(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    expires_in: timedelta | None = None,
) -> str:
    """A new join link key (shown once); the old link stops working."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    if expires_in is not None and not timedelta(minutes=5) <= expires_in <= MAX_JOIN_LINK_TTL:
        raise BadRequest("A join link lives 5 minutes to a year.", code="invalid_setting")
    row = sso_policy.settings_row(db, org.id)
    key = store.new_key()
    row.join_key_hash = store.digest(key)
    row.join_expires_at = rt.now() + expires_in if expires_in else None
    audit.record(
        db, actor, "sso.join_link_rotated", org_id=org.id, target=org.name,
        data={"expires_at": row.join_expires_at.isoformat() if row.join_expires_at else None},
    )  # fmt: skip
    return key


def disable_join_link(db: Session, actor: Actor, principal: Principal, org: Org) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = sso_policy.settings_row(db, org.id)
    row.join_key_hash, row.join_expires_at = None, None
    audit.record(db, actor, "sso.join_link_disabled", org_id=org.id, target=org.name)


def join_org(db: Session, key: str, now: datetime) -> Org:
    """The org whose live join link ``key`` is; unknown, rotated and expired links
    all answer the same."""
    row = None
    if 20 <= len(key) <= 128:
        row = db.scalars(select(OrgSso).where(OrgSso.join_key_hash == store.digest(key))).first()
    if row is None or (row.join_expires_at is not None and row.join_expires_at <= now):
        raise NotFound("This join link is not valid (it may have been rotated or expired).")
    return db.get_one(Org, row.org_id)
