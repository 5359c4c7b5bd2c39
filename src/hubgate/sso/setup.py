"""Setup links: a one-time link an operator or org admin hands to the org's IT
admin, who needs no hubgate account (DESIGN.md §1 "Setup link").

The link opens the setup portal for its org only. It ends when it expires
(default 72 hours), when revoked, or once a connection is activated through it;
a new link can be issued at any time. Only its SHA-256 is stored. Everything
done through it is audited with the IT admin's email as the actor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.access import Action, OrgTarget, Principal
from hubgate.accounts.emails import accepted_email
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, Org, SetupLink
from hubgate.errors import BadRequest, NotFound
from hubgate.principals import require
from hubgate.runtime import Runtime

__all__ = [
    "DEFAULT_TTL",
    "Portal",
    "SetupLinkEnd",
    "SetupLinkEnded",
    "create",
    "describe",
    "end",
    "last_attempt",
    "list_for",
    "open_portal",
    "revoke",
]

DEFAULT_TTL = timedelta(hours=72)
MAX_TTL = timedelta(days=30)


class SetupLinkEnd(StrEnum):
    """Why a setup link ended before it expired (``SetupLink.ended_why``)."""

    USED = "used"
    """A connection set up through it was activated."""
    REVOKED = "revoked"


class SetupLinkEnded(NotFound):
    """Unknown, expired, revoked or spent: the page says which, nothing more."""

    default_code = "setup_link_invalid"
    default_message = "This setup link is not valid. Ask your contact for a new one."


@dataclass(frozen=True, slots=True)
class Portal:
    """An open setup link: its org, and who acts through it."""

    link_id: int
    org: Org
    email: str
    expires_at: datetime

    def actor(self, client_address: str | None, trace_id: str) -> Actor:
        return Actor(label=f"setup:{self.email}", client_address=client_address, trace_id=trace_id)

    @property
    def principal(self) -> Principal:
        """The portal acts for the operator in this org only (it manages the org's
        SSO connections, and nothing else)."""
        return Principal.operator(self.org.id)


def _require(principal: Principal, org: Org) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))


def create(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org,
    email: str,
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[SetupLink, str]:
    """A new link for ``email`` (the IT admin); returns the row and the key, shown once."""
    _require(principal, org)
    if not timedelta(minutes=10) <= ttl <= MAX_TTL:
        raise BadRequest("A setup link lives 10 minutes to 30 days.", code="invalid_setting")
    key = store.new_key()
    row = SetupLink(
        org_id=org.id, key_hash=store.digest(key), email=accepted_email(email, rt.settings.env),
        created_by=actor.label, created_at=rt.now(), expires_at=rt.now() + ttl,
    )  # fmt: skip
    db.add(row)
    db.flush()
    _mail_link(db, rt, org, row, key)
    audit.record(
        db, actor, "setup.link_created", org_id=org.id, target=row.email,
        data={"link": row.id, "expires_at": row.expires_at.isoformat()},
    )  # fmt: skip
    return row, key


def _mail_link(db: Session, rt: Runtime, org: Org, row: SetupLink, key: str) -> None:
    """The IT admin gets the link by mail too (the outbox, in this transaction)."""
    body = (
        f"You were asked to connect {org.display_name} ({org.name}) on hubgate to your "
        "organization's identity provider (SAML 2.0 or OpenID Connect).\n\n"
        f"Open this setup link; it needs no hubgate account and works until "
        f"{row.expires_at:%Y-%m-%d %H:%M} UTC:\n\n{rt.url(f'/setup/{key}')}\n\n"
        f"It was created by {row.created_by}. Forward it to no one: whoever holds it can "
        "set up sign-in for the organization until it is used, revoked or expires.\n"
    )
    rt.mailer.send(db, row.email, f"Set up single sign-on for {org.display_name}", body)


def revoke(
    db: Session, rt: Runtime, actor: Actor, principal: Principal, org: Org, link_id: int
) -> None:
    _require(principal, org)
    row = db.get(SetupLink, link_id)
    if row is None or row.org_id != org.id or row.ended_at is not None:
        raise NotFound("No such live setup link.")
    end(db, actor, row, rt.now(), SetupLinkEnd.REVOKED)


def end(db: Session, actor: Actor, row: SetupLink, now: datetime, why: SetupLinkEnd) -> None:
    row.ended_at, row.ended_why = now, why.value
    audit.record(
        db, actor, f"setup.link_{why}", org_id=row.org_id, target=row.email,
        data={"link": row.id},
    )  # fmt: skip


def open_portal(db: Session, key: str, now: datetime) -> Portal:
    """The portal behind ``key``, or a refusal that says why it no longer opens."""
    row = None
    if 20 <= len(key) <= 128:
        row = db.scalars(select(SetupLink).where(SetupLink.key_hash == store.digest(key))).first()
    if row is None:
        raise SetupLinkEnded()
    if row.ended_at is not None:
        used = row.ended_why == SetupLinkEnd.USED
        spent = "was used to activate a connection" if used else "was revoked"
        raise SetupLinkEnded(f"This setup link {spent}. Ask your contact for a new one.")
    if row.expires_at <= now:
        raise SetupLinkEnded("This setup link has expired. Ask your contact for a new one.")
    org = db.get_one(Org, row.org_id)
    return Portal(link_id=row.id, org=org, email=row.email, expires_at=row.expires_at)


def list_for(db: Session, org: Org, now: datetime) -> list[SetupLink]:
    """The org's live links."""
    statement = select(SetupLink).where(
        SetupLink.org_id == org.id, SetupLink.ended_at.is_(None), SetupLink.expires_at > now
    )
    return list(db.scalars(statement.order_by(SetupLink.id)))


def describe(row: SetupLink) -> dict[str, Any]:
    return {
        "id": row.id, "email": row.email, "created_by": row.created_by,
        "created_at": row.created_at.isoformat(), "expires_at": row.expires_at.isoformat(),
        "ended": row.ended_why,
    }  # fmt: skip


def last_attempt(db: Session, connection_id: int) -> dict[str, Any] | None:
    """The latest sign-in through the connection, as the audit log holds it: the
    Identity it verified, or the refusal's reason code and trace id."""
    event = db.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.target == f"connection:{connection_id}",
            or_(
                AuditEvent.action == "sso.identity_verified",
                AuditEvent.action == "sso.login_refused",
            ),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if event is None:
        return None
    return {
        "ok": event.action == "sso.identity_verified", "at": event.at, "reason": event.reason,
        "trace_id": event.trace_id, "identity": json.loads(event.data),
    }  # fmt: skip
