"""The stream queues as SQL for the caller's short transactions; nothing here
sends anything.

A stream is delivered by one instance at a time (``claimed_by`` until
``claimed_until``), its queue in id order, so a destination sees its events in
the order they were queued. A failed attempt holds the whole stream back for
:func:`retry_delay` (5 s, doubling, at most 10 minutes) and is retried for as
long as the stream exists. A queue past ``HUBGATE_AUDIT_STREAM_MAX_QUEUED``
drops its oldest events (counted in ``dropped``): the audit log itself keeps
them, and a receiver that has been down that long backfills with ``hubgate
audit --json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from hubgate.db.engine import core
from hubgate.db.models import AuditDelivery, AuditEvent, AuditStream, Org
from hubgate.streams.formats import StreamEvent

__all__ = [
    "BATCH",
    "Claimed",
    "claim",
    "delivered",
    "delivered_some",
    "failed",
    "pending",
    "queued_counts",
    "retry_delay",
    "trim",
]

BATCH = 50
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(minutes=10)
ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Claimed:
    """A stream this instance holds, with what sending needs."""

    id: int
    kind: str
    url: str
    secret: str | None
    origin: str
    attempts: int


def _due(now: datetime) -> ColumnElement[bool]:
    """Its retry time has come and no instance holds it (or its lease ran out)."""
    return and_(
        AuditStream.next_attempt_at <= now,
        or_(AuditStream.claimed_until.is_(None), AuditStream.claimed_until <= now),
    )


def claim(db: Session, instance: str, now: datetime) -> Claimed | None:
    """Hold one due stream that has something queued until ``now + LEASE``. The
    ``UPDATE`` checks again that it is due and free, so of two instances that picked
    the same stream only one gets it."""
    waiting = select(AuditDelivery.stream_id).where(AuditDelivery.stream_id == AuditStream.id)
    picked = select(AuditStream.id).where(_due(now), waiting.exists())
    for stream_id in db.scalars(picked.order_by(AuditStream.next_attempt_at).limit(BATCH)):
        statement = (
            update(AuditStream)
            .where(AuditStream.id == stream_id, _due(now))
            .values(claimed_by=instance, claimed_until=now + LEASE)
            .returning(
                AuditStream.id,
                AuditStream.kind,
                AuditStream.url,
                AuditStream.secret,
                AuditStream.origin,
                AuditStream.attempts,
            )  # fmt: skip
        )
        row = core(db).execute(statement).first()
        if row is not None:
            return Claimed(*row)
    return None


def pending(db: Session, stream_id: int, limit: int = BATCH) -> list[tuple[int, StreamEvent]]:
    """The stream's next queued events, oldest first: (queue id, event)."""
    statement = (
        select(
            AuditDelivery.id,
            AuditEvent.id,
            AuditEvent.at,
            AuditEvent.org_id,
            Org.name,
            AuditEvent.action,
            AuditEvent.actor,
            AuditEvent.target,
            AuditEvent.reason,
            AuditEvent.trace_id,
        )  # fmt: skip
        .join(AuditEvent, AuditEvent.id == AuditDelivery.event_id)
        .outerjoin(Org, Org.id == AuditEvent.org_id)
        .where(AuditDelivery.stream_id == stream_id)
        .order_by(AuditDelivery.id)
        .limit(limit)
    )
    return [(queue_id, StreamEvent(*event)) for queue_id, *event in db.execute(statement)]


def delivered(db: Session, stream: Claimed, queue_ids: list[int], now: datetime) -> None:
    """The destination took these: off the queue; the stream is healthy again and free."""
    delivered_some(db, queue_ids)
    core(db).execute(
        update(AuditStream)
        .where(AuditStream.id == stream.id)
        .values(
            attempts=0,
            failing_since=None,
            last_error=None,
            last_delivered_at=now,
            claimed_by=None,
            claimed_until=None,
        )  # fmt: skip
    )


def delivered_some(db: Session, queue_ids: list[int]) -> None:
    """Off the queue, before a later event of the same batch failed."""
    if queue_ids:
        core(db).execute(delete(AuditDelivery).where(AuditDelivery.id.in_(queue_ids)))


def failed(db: Session, stream: Claimed, error: str, now: datetime) -> None:
    """An attempt failed: the stream waits :func:`retry_delay`, failing since its
    first failure in a row, and is free for whichever instance comes next."""
    attempts = stream.attempts + 1
    core(db).execute(
        update(AuditStream)
        .where(AuditStream.id == stream.id)
        .values(
            attempts=attempts,
            next_attempt_at=now + retry_delay(attempts),
            failing_since=func.coalesce(AuditStream.failing_since, now),
            last_error=error[:ERROR_LENGTH],
            claimed_by=None,
            claimed_until=None,
        )  # fmt: skip
    )


def retry_delay(attempts: int) -> timedelta:
    """After the ``attempts``-th failure in a row: 5 s, doubling, at most 10 minutes."""
    doublings = min(max(attempts - 1, 0), 16)
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def queued_counts(db: Session) -> dict[int, int]:
    """Events waiting, per stream id (streams with none are left out)."""
    statement = select(AuditDelivery.stream_id, func.count()).group_by(AuditDelivery.stream_id)
    return {stream_id: int(n) for stream_id, n in db.execute(statement).all()}


def trim(db: Session, bound: int) -> int:
    """Drop the oldest queued events of each stream past ``bound``; how many."""
    dropped = 0
    for stream_id, count in queued_counts(db).items():
        if count > bound:
            dropped += _drop_oldest(db, stream_id, count - bound)
    return dropped


def _drop_oldest(db: Session, stream_id: int, n: int) -> int:
    oldest = select(AuditDelivery.id).where(AuditDelivery.stream_id == stream_id)
    last = db.scalars(oldest.order_by(AuditDelivery.id).offset(n - 1).limit(1)).one()
    gone = (
        core(db)
        .execute(
            delete(AuditDelivery).where(
                AuditDelivery.stream_id == stream_id, AuditDelivery.id <= last
            )
        )
        .rowcount
    )
    core(db).execute(
        update(AuditStream)
        .where(AuditStream.id == stream_id)
        .values(dropped=AuditStream.dropped + gone)
    )
    return int(gone)
