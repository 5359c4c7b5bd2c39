"""The shared short-lived store (STYLE.md principle 5).

One-time links, request ids, nonces and seen ids live in the ``ephemeral`` table
with an expiry and a unique ``(purpose, key_hash)``; every instance shares it.
Keys are stored hashed, so a database reader cannot replay a link.

:func:`put` and :func:`consume` are single Core statements on the session's
connection (every sign-in makes a few: the ORM's unit of work and its bulk-delete
bookkeeping cost several times the statement itself).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hubgate.db.engine import core
from hubgate.db.models import Ephemeral
from hubgate.db.types import utcnow

__all__ = [
    "ReplayStore",
    "bound",
    "consume",
    "digest",
    "new_key",
    "peek",
    "purge_expired",
    "put",
]


def new_key() -> str:
    """A random, URL-safe key with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def bound(key: str, browser_key: str) -> str:
    """``key`` as only ``browser_key``'s browser can name it: a one-time entry
    stored under it is found (and spent) by that browser alone, in one statement."""
    return f"{key}\x00{browser_key}"


_E = Ephemeral.__table__
_PUT = insert(Ephemeral).inline()  # no RETURNING of the unread id
_CONSUME = (
    delete(Ephemeral)
    .where(_E.c.purpose == bindparam("b_purpose"), _E.c.key_hash == bindparam("b_key_hash"))
    .returning(_E.c.payload, _E.c.expires_at)
)


def put(db: Session, purpose: str, key: str, payload: dict[str, Any], ttl: timedelta) -> None:
    """Store ``payload`` under ``key`` for ``ttl``; a duplicate key violates the constraint."""
    now = utcnow()
    row = {
        "purpose": purpose, "key_hash": digest(key), "payload": json.dumps(payload),
        "expires_at": now + ttl, "created_at": now,
    }  # fmt: skip
    core(db).execute(_PUT, row)


def consume(
    db: Session, purpose: str, key: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """Take the payload stored under ``key`` once; ``None`` if unknown, used or expired.

    The row is deleted with a conditional DELETE, so of two concurrent consumers
    on any instances only the one whose DELETE removed the row gets the payload.
    """
    now = now or utcnow()
    found = core(db).execute(_CONSUME, {"b_purpose": purpose, "b_key_hash": digest(key)})
    row = found.first()
    if row is None or row.expires_at <= now:
        return None
    loaded: dict[str, Any] = json.loads(row.payload)
    return loaded


def peek(db: Session, purpose: str, key: str, now: datetime | None = None) -> dict[str, Any] | None:
    """Read without consuming (for pages that show a link before it is used)."""
    now = now or utcnow()
    row = db.scalars(
        select(Ephemeral).where(Ephemeral.purpose == purpose, Ephemeral.key_hash == digest(key))
    ).first()
    if row is None or row.expires_at <= now:
        return None
    loaded: dict[str, Any] = json.loads(row.payload)
    return loaded


def purge_expired(db: Session, now: datetime | None = None) -> int:
    result = db.execute(delete(Ephemeral).where(Ephemeral.expires_at <= (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)


class ReplayStore:
    """Seen ids (e.g. SAML assertion ids) shared by every instance: the first
    insert of a key wins, a second one, on any instance, finds it taken."""

    def __init__(self, db: Session, purpose: str) -> None:
        self.db = db
        self.purpose = purpose
        self.taken: list[tuple[str, datetime]] = []  # the keys its inserts won, and until when

    def first_use(self, key: str, expires_at: datetime) -> bool:
        connection = self.db.connection()
        row = {
            "purpose": self.purpose,
            "key_hash": digest(key),
            "payload": "{}",
            "expires_at": expires_at,
            "created_at": utcnow(),
        }
        # A row comes back only when this insert won (rowcount is not reliable
        # with RETURNING on PostgreSQL).
        won = connection.execute(_FIRST_USE[connection.dialect.name], row).first() is not None
        if won:
            self.taken.append((key, expires_at))
        return won


_FIRST_USE = {
    name: dialect.insert(Ephemeral)
    .on_conflict_do_nothing(index_elements=["purpose", "key_hash"])
    .returning(Ephemeral.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
