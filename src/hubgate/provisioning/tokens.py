"""Per-org SCIM bearer tokens: created by org admins (or an operator), shown once,
stored as SHA-256, revocable, their last use recorded. A token reaches only its
own org's SCIM endpoints."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import Org, ScimToken
from hubgate.errors import NotFound
from hubgate.principals import require
from hubgate.scim.errors import ScimUnauthorized

__all__ = ["PREFIX", "ScimCaller", "create", "describe", "list_for", "resolve", "revoke"]

PREFIX = "hgscim_"
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ScimCaller:
    """Who calls the SCIM endpoints: one token of one org, and that org."""

    token_id: int
    org: Org

    @property
    def actor_label(self) -> str:
        return f"scim-token:{self.token_id}"


def create(
    db: Session, actor: Actor, principal: Principal, org: Org, name: str
) -> tuple[ScimToken, str]:
    """A new token; returns the row and the secret, shown this once."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ScimToken(
        org_id=org.id, name=(name.strip() or "SCIM")[:100], secret_hash=store.digest(secret),
        hint=secret[-4:], created_by=actor.label,
    )  # fmt: skip
    db.add(row)
    db.flush()
    audit.record(
        db, actor, "scim.token_created", org_id=org.id, target=f"scim-token:{row.id}",
        data={"name": row.name},
    )  # fmt: skip
    return row, secret


def revoke(
    db: Session, actor: Actor, principal: Principal, org: Org, token_id: int, now: datetime
) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = db.get(ScimToken, token_id)
    if row is None or row.org_id != org.id or row.revoked_at is not None:
        raise NotFound("No such live SCIM token.")
    row.revoked_at = now
    audit.record(db, actor, "scim.token_revoked", org_id=org.id, target=f"scim-token:{row.id}")


def list_for(db: Session, org: Org) -> list[ScimToken]:
    statement = select(ScimToken).where(ScimToken.org_id == org.id, ScimToken.revoked_at.is_(None))
    return list(db.scalars(statement.order_by(ScimToken.id)))


def describe(row: ScimToken) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "hint": row.hint, "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }  # fmt: skip


def resolve(db: Session, authorization: str | None, org_name: str, now: datetime) -> ScimCaller:
    """The caller behind ``Authorization: Bearer ...`` for the org in the path, read
    with that org in one query; any other org's token, a revoked one, an org that
    does not exist or garbage answers the same 401."""
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(PREFIX) or len(secret) > 128:
        raise ScimUnauthorized()
    row = db.execute(
        select(ScimToken.id, ScimToken.revoked_at, ScimToken.last_used_at, Org)
        .join(Org, Org.id == ScimToken.org_id)
        .where(ScimToken.secret_hash == store.digest(secret), Org.name == org_name[:64])
    ).first()
    if row is None or row.revoked_at is not None:
        raise ScimUnauthorized()
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        db.execute(update(ScimToken).where(ScimToken.id == row.id).values(last_used_at=now))
    return ScimCaller(token_id=row.id, org=row.Org)
