"""Sign-in health of an org's SSO at a glance: sign-ins and refusals per hour (the
last 48) or per day (the last 30), by connection and reason code, with the last
successful sign-in of each connection and the last SCIM request of each token.

The audit log is the source of truth (``sso.login`` and ``sso.login_refused``,
DESIGN.md §1 "Audit event"): one grouped query per chart, bounded to its window,
so the chart and the audit page it links to can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubgate.db.audit_sql import SIGN_IN_REFUSED, SIGNED_IN, connection_of, truncated
from hubgate.db.models import AuditEvent, ScimToken, SsoConnection, SsoLink

__all__ = [
    "PERIODS",
    "ConnectionHealth",
    "Count",
    "Health",
    "Period",
    "ScimHealth",
    "Window",
    "connections",
    "counts",
    "health",
    "scim_tokens",
    "window",
]

Period = Literal["hour", "day"]
Outcome = Literal["success", "refused"]


@dataclass(frozen=True, slots=True)
class _Shape:
    width: timedelta
    buckets: int
    chars: int  # of "YYYY-MM-DD HH" that name the bucket
    key: str  # strptime format of those characters


PERIODS: dict[Period, _Shape] = {
    "hour": _Shape(timedelta(hours=1), 48, 13, "%Y-%m-%d %H"),
    "day": _Shape(timedelta(days=1), 30, 10, "%Y-%m-%d"),
}


@dataclass(frozen=True, slots=True)
class Window:
    """``buckets`` starts, oldest first; ``until`` ends the newest (the current one)."""

    period: Period
    starts: tuple[datetime, ...]
    until: datetime

    @property
    def since(self) -> datetime:
        return self.starts[0]

    @property
    def width(self) -> timedelta:
        return PERIODS[self.period].width


@dataclass(frozen=True, slots=True)
class Count:
    start: datetime
    connection_id: int | None
    outcome: Outcome
    reason: str | None
    count: int


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    id: int
    name: str
    kind: str
    state: str
    last_sign_in_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScimHealth:
    id: int
    name: str
    revoked: bool
    last_used_at: datetime | None
    """Touched at most once a minute (hubgate.provisioning.tokens)."""


@dataclass(frozen=True, slots=True)
class Health:
    window: Window
    counts: list[Count]
    connections: list[ConnectionHealth]
    scim_tokens: list[ScimHealth]


def window(period: Period, now: datetime) -> Window:
    """The last ``buckets`` hours or days, the current (partial) one included."""
    shape = PERIODS[period]
    current = _parse(now.astimezone(UTC).strftime(shape.key), shape.key)
    starts = tuple(current - shape.width * i for i in reversed(range(shape.buckets)))
    return Window(period, starts, current + shape.width)


def health(db: Session, org_id: int, period: Period, now: datetime) -> Health:
    span = window(period, now)
    return Health(span, counts(db, org_id, span), connections(db, org_id), scim_tokens(db, org_id))


def counts(db: Session, org_id: int, span: Window) -> list[Count]:
    """One query: events in the window grouped by bucket, connection, action, reason."""
    shape = PERIODS[span.period]
    bucket, connection = truncated(shape.chars), connection_of()
    rows = db.execute(
        select(bucket, connection, AuditEvent.action, AuditEvent.reason, func.count())
        .where(
            AuditEvent.org_id == org_id,
            AuditEvent.action.in_((SIGNED_IN, SIGN_IN_REFUSED)),
            AuditEvent.at >= span.since,
            AuditEvent.at < span.until,
        )
        .group_by(bucket, connection, AuditEvent.action, AuditEvent.reason)
    )
    return sorted(
        (
            Count(
                _parse(start, shape.key),
                _id(connection_id),
                "success" if action == SIGNED_IN else "refused",
                reason,
                number,
            )  # fmt: skip
            for start, connection_id, action, reason, number in rows
        ),
        key=lambda c: (c.start, c.outcome != "success", c.connection_id or 0, c.reason or ""),
    )


def _parse(text: str, key: str) -> datetime:
    return datetime.strptime(text, key).replace(tzinfo=UTC)


def _id(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def connections(db: Session, org_id: int) -> list[ConnectionHealth]:
    """Each connection's last successful sign-in, from its links' ``last_sign_in_at``
    (touched at every sign-in), which spares a scan of the whole audit log."""
    columns = (SsoConnection.id, SsoConnection.name, SsoConnection.kind, SsoConnection.state)
    rows = db.execute(
        select(*columns, func.max(SsoLink.last_sign_in_at))
        .outerjoin(SsoLink, SsoLink.connection_id == SsoConnection.id)
        .where(SsoConnection.org_id == org_id)
        .group_by(*columns)
        .order_by(SsoConnection.id)
    )
    return [ConnectionHealth(*row) for row in rows]


def scim_tokens(db: Session, org_id: int) -> list[ScimHealth]:
    rows = db.execute(
        select(ScimToken.id, ScimToken.name, ScimToken.revoked_at, ScimToken.last_used_at)
        .where(ScimToken.org_id == org_id)
        .order_by(ScimToken.id)
    )
    return [ScimHealth(id_, name, revoked is not None, used) for id_, name, revoked, used in rows]
