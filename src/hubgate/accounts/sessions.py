"""Server-side browser sessions.

The cookie holds a random id; the database keeps only its SHA-256, so a copy of
the database cannot be turned into live cookies. Sessions end after an idle
period or an absolute lifetime, whichever comes first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from hubgate.accounts.lookups import primary_email_of
from hubgate.db.engine import core
from hubgate.db.models import WebSession
from hubgate.store import digest

__all__ = ["Lifetimes", "LiveSession", "end", "end_all", "end_by_id", "resolve", "start"]

COOKIE = "hubgate_session"
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


def start(
    db: Session,
    user_id: int,
    lifetimes: Lifetimes,
    now: datetime,
    *,
    client_address: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, int]:
    """Open a session; returns the cookie value (shown once) and the row's id."""
    cookie = secrets.token_urlsafe(32)
    row = {
        "id_hash": digest(cookie),
        "user_id": user_id,
        "created_at": now,
        "last_seen_at": now,
        "expires_at": now + lifetimes.absolute,
        "client_address": client_address,
        "user_agent": (user_agent or "")[:256] or None,
    }
    return cookie, int(core(db).execute(_INSERT, row).scalar_one())


_INSERT = insert(WebSession).returning(WebSession.id)


@dataclass(frozen=True, slots=True)
class LiveSession:
    id: int
    user_id: int
    email: str
    until: datetime
    """When the session ends unless it is used again: its absolute expiry or its
    idle timeout, whichever comes first."""


# Built once: this runs on every request that carries a cookie.
_BY_HASH = select(
    WebSession.id,
    WebSession.user_id,
    WebSession.expires_at,
    WebSession.last_seen_at,
    primary_email_of(WebSession.user_id).label("email"),
).where(WebSession.id_hash == bindparam("id_hash"))


def resolve(db: Session, cookie: str, lifetimes: Lifetimes, now: datetime) -> LiveSession | None:
    """The live session for ``cookie``, or ``None`` (and the row is gone) if it ended."""
    if not cookie or len(cookie) > 128:
        return None
    row = db.execute(_BY_HASH, {"id_hash": digest(cookie)}).first()
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + lifetimes.idle <= now:
        db.execute(delete(WebSession).where(WebSession.id == row.id))
        return None
    seen = row.last_seen_at
    if now - seen >= _TOUCH_EVERY:
        db.execute(update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now))
        seen = now
    email = row.email or f"user:{row.user_id}"
    return LiveSession(row.id, row.user_id, email, until=min(row.expires_at, seen + lifetimes.idle))


def end(db: Session, cookie: str) -> None:
    db.execute(delete(WebSession).where(WebSession.id_hash == digest(cookie)))


def end_by_id(db: Session, session_id: int) -> None:
    db.execute(delete(WebSession).where(WebSession.id == session_id))


def end_all(db: Session, user_id: int, *, keep: int | None = None) -> int:
    statement = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(WebSession.id != keep)
    return int(getattr(db.execute(statement), "rowcount", 0) or 0)
