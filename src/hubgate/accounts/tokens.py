"""Access tokens: personal tokens act as their user, team tokens as their team.

A token is shown once (``hg_`` + 256 random bits), stored as a SHA-256 hash
(high-entropy secrets need no slow hash), may expire, may be revoked, and records
when it was last used (at most once a minute, so a busy token costs no write per
request).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Scope
from hubgate.accounts import users
from hubgate.accounts.lookups import primary_email_of
from hubgate.db.models import Token, User
from hubgate.errors import BadRequest, NotFound, Unauthenticated
from hubgate.store import digest

if TYPE_CHECKING:
    from hubgate.audit import Actor

__all__ = [
    "PERSONAL_SCOPES",
    "PREFIX",
    "TEAM_SCOPES",
    "LiveToken",
    "NewToken",
    "create_personal",
    "issue",
    "personal_token",
    "resolve",
    "revoke",
    "revoke_personal",
]

PREFIX = "hg_"
PERSONAL_SCOPES = frozenset({Scope.READ, Scope.WRITE})
TEAM_SCOPES = frozenset({Scope.FULL, Scope.INFERENCE, Scope.READ})
_MAX_SECRET = 128
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class NewToken:
    secret: str
    row: Token


def parse_scopes(values: list[str] | tuple[str, ...], allowed: frozenset[Scope]) -> str:
    try:
        scopes = {Scope(v) for v in values}
    except ValueError as exc:
        raise BadRequest(
            f"Unknown scope; choose from {_names(allowed)}.", code="invalid_scope"
        ) from exc
    if not scopes or not scopes <= allowed:
        raise BadRequest(f"Choose scopes from {_names(allowed)}.", code="invalid_scope")
    return " ".join(sorted(scopes))


def _names(scopes: frozenset[Scope]) -> str:
    return ", ".join(sorted(s.value for s in scopes))


def issue(
    db: Session,
    *,
    user_id: int | None,
    name: str,
    scopes: str,
    expires_at: datetime | None,
    org_id: int | None = None,
    team_id: int | None = None,
) -> NewToken:
    secret = PREFIX + secrets.token_urlsafe(32)
    row = Token(
        kind="team" if team_id is not None else "personal",
        name=name,
        secret_hash=digest(secret),
        hint=secret[:8],
        user_id=user_id,
        org_id=org_id,
        team_id=team_id,
        scopes=scopes,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return NewToken(secret=secret, row=row)


@dataclass(frozen=True, slots=True)
class LiveToken:
    """A usable token: a personal one names its user (and email), a team one its team."""

    id: int
    user_id: int | None
    email: str | None
    org_id: int | None
    team_id: int | None
    scopes: frozenset[Scope]
    expires_at: datetime | None = None


# Built once: this runs on every request that carries a token.
_BY_HASH = select(
    Token.id,
    Token.user_id,
    Token.org_id,
    Token.team_id,
    Token.scopes,
    Token.expires_at,
    Token.revoked_at,
    Token.last_used_at,
    primary_email_of(Token.user_id).label("email"),
).where(Token.secret_hash == bindparam("secret_hash"))


def resolve(db: Session, secret: str, now: datetime) -> LiveToken:
    """The live token for ``secret``; raises ``Unauthenticated`` with the exact reason."""
    if not secret.startswith(PREFIX) or len(secret) > _MAX_SECRET:
        raise Unauthenticated("The access token is not valid.", code="token_invalid")
    row = db.execute(_BY_HASH, {"secret_hash": digest(secret)}).first()
    if row is None:
        raise Unauthenticated("The access token is not valid.", code="token_invalid")
    if row.revoked_at is not None:
        raise Unauthenticated("The access token was revoked.", code="token_revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("The access token has expired.", code="token_expired")
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        db.execute(update(Token).where(Token.id == row.id).values(last_used_at=now))
    scopes = frozenset(Scope(s) for s in row.scopes.split())
    return LiveToken(
        row.id, row.user_id, row.email, row.org_id, row.team_id, scopes, row.expires_at
    )


def revoke(db: Session, row: Token, now: datetime) -> bool:
    """Revoke once; answers whether this call did it."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


def create_personal(
    db: Session,
    actor: Actor,
    user_id: int,
    name: str,
    scopes: list[str],
    days: int | None,
    now: datetime,
) -> NewToken:
    users.require_verified(db.get_one(User, user_id))
    new = issue(
        db, user_id=user_id, name=name.strip() or "token",
        scopes=parse_scopes(scopes, PERSONAL_SCOPES),
        expires_at=now + timedelta(days=days) if days else None,
    )  # fmt: skip
    audit.record(
        db,
        actor,
        "token.created",
        target=f"token:{new.row.id}",
        data={"kind": "personal", "scopes": new.row.scopes},
    )
    return new


def personal_token(db: Session, user_id: int, token_id: int) -> Token:
    """A personal token of ``user_id``: nobody else may see it, or learn that it exists."""
    row = db.get(Token, token_id)
    if row is None or row.kind != "personal" or row.user_id != user_id:
        raise NotFound("No such token.")
    return row


def revoke_personal(db: Session, actor: Actor, user_id: int, token_id: int, now: datetime) -> None:
    row = personal_token(db, user_id, token_id)
    if revoke(db, row, now):
        audit.record(
            db, actor, "token.revoked", target=f"token:{row.id}", data={"kind": "personal"}
        )
