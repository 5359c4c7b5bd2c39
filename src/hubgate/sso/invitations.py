"""Invitations and the join link (DESIGN.md §1 "Policy").

An invitation names an email, an org role and teams; it is accepted only by
signing in through the org's SSO with that email. Its link, ``/sso/invite/{key}``,
only starts that sign-in: it admits no one by itself, so whoever else opens it
signs in as themselves and is admitted (or refused) as they would be anyway.

The join link runs SSO and makes the person a member with the default role;
rotating it kills the old one at once.

A link's key is found by its SHA-256 and kept sealed (``rt.sealer``), so admins
can see and pass the link on again; a key that cannot be opened is simply not
shown (rotate or re-send to make a new one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
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
from hubgate.errors import BadRequest, NotFound, TooManyRequests
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sealed import UnsealFailed
from hubgate.sso import policy as sso_policy

__all__ = [
    "INVITATION_TTL",
    "JoinLink",
    "accept",
    "describe",
    "describe_all",
    "disable_join_link",
    "invitation_org",
    "invitation_url",
    "invite",
    "join_link",
    "join_org",
    "list_for",
    "pending_for",
    "resend",
    "revoke",
    "rotate_join_link",
    "set_join_link_expiry",
]

INVITATION_TTL = timedelta(days=14)
MAX_JOIN_LINK_TTL = timedelta(days=365)
MIN_JOIN_LINK_TTL = timedelta(minutes=5)
RESEND_AFTER = timedelta(minutes=1)
_MAX_PENDING = 1000
_KEY_LENGTHS = range(20, 129)


def _opened(rt: Runtime, sealed: str | None) -> str | None:
    """The key in ``sealed``, or ``None`` when there is none or it cannot be opened."""
    if sealed is None:
        return None
    try:
        return rt.sealer.unseal(sealed)
    except UnsealFailed:
        return None


def _new_key(rt: Runtime) -> tuple[str, str, str]:
    """A new link key, its SHA-256 and the key sealed."""
    key = store.new_key()
    return key, store.digest(key), rt.sealer.seal(key)


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
    key, key_hash, sealed = _new_key(rt)
    row = Invitation(
        org_id=org.id, email=address, role=role.label, teams=json.dumps(resolved),
        invited_by=actor.label, created_at=rt.now(), expires_at=rt.now() + INVITATION_TTL,
        key_hash=key_hash, key_sealed=sealed,
    )  # fmt: skip
    db.add(row)
    db.flush()
    _mail_invitation(db, rt, org, row, key)
    audit.record(
        db, actor, "invitation.created", org_id=org.id, target=address,
        data={"role": role.label, "teams": [[n, r.label] for n, r in teams]},
    )  # fmt: skip
    return row


def _mail_invitation(db: Session, rt: Runtime, org: Org, row: Invitation, key: str) -> None:
    """The invitation's link, mailed through the outbox in this transaction (plain
    text; the sender adds the HTML alternative with the link made clickable)."""
    body = (
        f"{row.invited_by} invited you to {org.display_name} ({org.name}) on hubgate "
        f"with the role {row.role}.\n\n"
        f"Accept by opening this link and signing in through {org.display_name}'s "
        f"single sign-on as {row.email}:\n\n{invitation_link(rt, key)}\n\n"
        f"The invitation expires on {row.expires_at:%Y-%m-%d %H:%M} UTC. Not expecting "
        "it? Ignore this mail.\n"
    )
    rt.mailer.send(db, row.email, f"You are invited to {org.display_name} on hubgate", body)
    row.mailed_at = rt.now()


def invitation_link(rt: Runtime, key: str) -> str:
    return rt.url(f"/sso/invite/{key}")


def invitation_url(rt: Runtime, row: Invitation) -> str | None:
    """The link to pass on, while the invitation is kept with its key."""
    key = _opened(rt, row.key_sealed)
    return invitation_link(rt, key) if key else None


def resend(
    db: Session, rt: Runtime, actor: Actor, principal: Principal, org: Org, email: str
) -> Invitation:
    """Mail the pending invitation of ``email`` again, with its expiry renewed (and
    a new link when its key cannot be shown); at most once a minute."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = _pending(db, org, normalize_email(email), rt.now())
    if row.mailed_at is not None and rt.now() - row.mailed_at < RESEND_AFTER:
        raise TooManyRequests("It was mailed less than a minute ago.", code="resent_too_soon")
    key = _opened(rt, row.key_sealed)
    if key is None:
        key, row.key_hash, row.key_sealed = _new_key(rt)
    row.expires_at = rt.now() + INVITATION_TTL
    _mail_invitation(db, rt, org, row, key)
    audit.record(
        db, actor, "invitation.resent", org_id=org.id, target=row.email,
        data={"expires_at": row.expires_at.isoformat()},
    )  # fmt: skip
    return row


def _pending(db: Session, org: Org, address: str, now: datetime) -> Invitation:
    row = db.scalars(
        select(Invitation).where(
            Invitation.org_id == org.id, Invitation.email == address, Invitation.expires_at > now
        )
    ).first()
    if row is None:
        raise NotFound("No pending invitation for that email.", code="no_invitation")
    return row


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


def describe(db: Session, rt: Runtime, row: Invitation) -> dict[str, Any]:
    return describe_all(db, rt, [row])[0]


def describe_all(db: Session, rt: Runtime, rows: Sequence[Invitation]) -> list[dict[str, Any]]:
    """:func:`describe` for the invitations of one org, with one query for team names."""
    if not rows:
        return []
    org_id = rows[0].org_id
    names = {t.id: t.name for t in db.scalars(select(Team).where(Team.org_id == org_id))}
    return [_described(rt, row, names) for row in rows]


def _described(rt: Runtime, row: Invitation, names: dict[int, str]) -> dict[str, Any]:
    teams = [[names.get(team_id, "?"), role] for team_id, role in json.loads(row.teams)]
    return {
        "email": row.email, "role": row.role, "teams": teams, "invited_by": row.invited_by,
        "expires_at": row.expires_at.isoformat(), "url": invitation_url(rt, row),
        "mailed_at": row.mailed_at.isoformat() if row.mailed_at else None,
    }  # fmt: skip


def invitation_org(db: Session, key: str, now: datetime) -> Org:
    """The org of the pending invitation whose link ``key`` is; unknown, revoked,
    accepted and expired links all answer the same."""
    row = None
    if len(key) in _KEY_LENGTHS:
        row = db.scalars(select(Invitation).where(Invitation.key_hash == store.digest(key))).first()
    if row is None or row.expires_at <= now:
        raise NotFound(
            "This invitation link is not valid (it may have been revoked, accepted or "
            "have expired).",
            code="invitation_invalid",
        )
    return db.get_one(Org, row.org_id)


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


@dataclass(frozen=True, slots=True)
class JoinLink:
    """The org's join link as an admin sees it: ``state`` is ``none`` (never made or
    disabled), ``live``, ``expired``, or ``hidden`` (it works, but was made before
    hubgate kept links, or its key cannot be opened: rotate to see one)."""

    state: str
    url: str | None
    expires_at: datetime | None
    rotated_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "state": self.state, "join_url": self.url,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "rotated_at": self.rotated_at.isoformat() if self.rotated_at else None,
        }  # fmt: skip


def join_link(db: Session, rt: Runtime, principal: Principal, org: Org) -> JoinLink:
    """The org's join link, for its admins."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = db.get(OrgSso, org.id)
    if row is None or row.join_key_hash is None:
        return JoinLink("none", None, None, None)
    key = _opened(rt, row.join_key_sealed)
    url = rt.url(f"/sso/join/{key}") if key else None
    expired = row.join_expires_at is not None and row.join_expires_at <= rt.now()
    state = "expired" if expired else "live" if url else "hidden"
    return JoinLink(state, url, row.join_expires_at, row.join_rotated_at)


def _join_ttl(expires_in: timedelta | None) -> None:
    if expires_in is not None and not MIN_JOIN_LINK_TTL <= expires_in <= MAX_JOIN_LINK_TTL:
        raise BadRequest("A join link lives 5 minutes to a year.", code="invalid_setting")


def rotate_join_link(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    expires_in: timedelta | None = None,
) -> str:
    """A new join link key; the old link stops working at once."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    _join_ttl(expires_in)
    row = sso_policy.settings_row(db, org.id)
    key, row.join_key_hash, row.join_key_sealed = _new_key(rt)
    row.join_expires_at = rt.now() + expires_in if expires_in else None
    row.join_rotated_at = rt.now()
    audit.record(
        db, actor, "sso.join_link_rotated", org_id=org.id, target=org.name,
        data={"expires_at": row.join_expires_at.isoformat() if row.join_expires_at else None},
    )  # fmt: skip
    return key


def set_join_link_expiry(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    expires_in: timedelta | None,
) -> None:
    """The current join link ends ``expires_in`` from now (``None``: never); the
    link itself stays the same."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    _join_ttl(expires_in)
    row = db.get(OrgSso, org.id)
    if row is None or row.join_key_hash is None:
        raise BadRequest("There is no join link: create one first.", code="no_join_link")
    row.join_expires_at = rt.now() + expires_in if expires_in else None
    audit.record(
        db, actor, "sso.join_link_expiry_changed", org_id=org.id, target=org.name,
        data={"expires_at": row.join_expires_at.isoformat() if row.join_expires_at else None},
    )  # fmt: skip


def disable_join_link(db: Session, actor: Actor, principal: Principal, org: Org) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = sso_policy.settings_row(db, org.id)
    row.join_key_hash, row.join_key_sealed, row.join_expires_at = None, None, None
    audit.record(db, actor, "sso.join_link_disabled", org_id=org.id, target=org.name)


def join_org(db: Session, key: str, now: datetime) -> Org:
    """The org whose live join link ``key`` is; unknown, rotated and expired links
    all answer the same."""
    row = None
    if len(key) in _KEY_LENGTHS:
        row = db.scalars(select(OrgSso).where(OrgSso.join_key_hash == store.digest(key))).first()
    if row is None or (row.join_expires_at is not None and row.join_expires_at <= now):
        raise NotFound(
            "This join link is not valid (it may have been rotated or expired).",
            code="join_link_invalid",
        )
    return db.get_one(Org, row.org_id)
