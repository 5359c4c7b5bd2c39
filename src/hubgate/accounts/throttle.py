"""Sign-in throttling: failed attempts counted per account and per client address.

Fixed windows in the shared database, so every instance counts together. The
counter is bumped with one ``INSERT .. ON CONFLICT DO UPDATE``, never a
read-modify-write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hubgate.db.models import Throttle
from hubgate.errors import TooManyRequests

__all__ = ["Limits", "check", "failed", "reset"]


@dataclass(frozen=True, slots=True)
class Limits:
    window: timedelta
    per_account: int
    per_address: int


def keys(account: str, address: str | None, scope: str = "") -> list[tuple[str, str]]:
    """The counters of one attempt; ``scope`` keeps another kind of attempt (a
    password reset request) apart from sign-ins."""
    found = [("account", f"{scope}account:{account}")]
    if address:
        found.append(("address", f"{scope}address:{address}"))
    return found


def check(
    db: Session,
    limits: Limits,
    account: str,
    address: str | None,
    now: datetime,
    *,
    scope: str = "",
) -> None:
    """Refuse before any password work when a key is over its limit."""
    for kind, key in keys(account, address, scope):
        row = db.get(Throttle, key)
        limit = limits.per_account if kind == "account" else limits.per_address
        if row and row.window_start > now - limits.window and row.failures >= limit:
            retry = int((row.window_start + limits.window - now).total_seconds()) + 1
            raise TooManyRequests(retry_after=retry)


def failed(
    db: Session,
    limits: Limits,
    account: str,
    address: str | None,
    now: datetime,
    *,
    scope: str = "",
) -> None:
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    stale = now - limits.window
    for _kind, key in keys(account, address, scope):
        statement = insert(Throttle).values(key=key, window_start=now, failures=1)
        db.execute(
            statement.on_conflict_do_update(
                index_elements=[Throttle.key],
                set_={
                    "failures": case(
                        (Throttle.window_start <= stale, 1), else_=Throttle.failures + 1
                    ),
                    "window_start": case(
                        (Throttle.window_start <= stale, now), else_=Throttle.window_start
                    ),
                },
            )
        )


def reset(db: Session, account: str) -> None:
    row = db.get(Throttle, f"account:{account}")
    if row is not None:
        db.delete(row)


def failures(db: Session, key: str) -> int:
    return db.scalar(select(Throttle.failures).where(Throttle.key == key)) or 0
