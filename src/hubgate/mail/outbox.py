"""The outbox as a queue: claim what is due, then settle each row as sent, to be
retried, or failed. Each function is SQL for the caller's short transaction; none
of them sends anything.

A row goes ``pending`` -> ``sent``, or after :data:`MAX_ATTEMPTS` failed attempts
-> ``failed``. Between attempts it waits :func:`retry_delay` (30 s, doubling, at
most an hour), about five hours in all before it is given up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from hubgate.db.engine import core
from hubgate.db.models import OutboxMail
from hubgate.mail.message import Outgoing

__all__ = [
    "BATCH",
    "LEASE",
    "MAX_ATTEMPTS",
    "claim",
    "counts",
    "mark_failed_attempt",
    "mark_sent",
    "retry_delay",
]

BATCH = 10  # sent within the lease even when each call nearly times out (10 x 30 s)
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
ERROR_LENGTH = 500  # the last_error column


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending, its time has come, and no sender holds it (or its lease ran out)."""
    return and_(
        OutboxMail.status == "pending",
        OutboxMail.next_attempt_at <= now,
        or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until <= now),
    )


def claim(
    db: Session, instance: str, now: datetime, *, limit: int = BATCH, lease: timedelta = LEASE
) -> list[Outgoing]:
    """Claim up to ``limit`` due rows for ``instance`` until ``now + lease``.

    Two senders never hold one row: on PostgreSQL the ``SELECT ... FOR UPDATE SKIP
    LOCKED`` locks the rows it picks and a concurrent claimer skips them; on SQLite
    one writer runs at a time. The ``UPDATE`` checks again that each row is due and
    free, so a row claimed between the two statements is left out. (One statement,
    ``UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``, is not
    enough: PostgreSQL may run the subquery again, skip the rows it has just
    updated, and so claim more than ``limit``.)
    """
    connection = core(db)
    picked = select(OutboxMail.id).where(_due(now))
    picked = picked.order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit)
    ids = list(connection.scalars(picked.with_for_update(skip_locked=True)))
    if not ids:
        return []
    statement = (
        update(OutboxMail)
        .where(OutboxMail.id.in_(ids), _due(now))
        .values(claimed_by=instance, claimed_until=now + lease)
        .returning(
            OutboxMail.id,
            OutboxMail.recipient,
            OutboxMail.subject,
            OutboxMail.body,
            OutboxMail.html,
            OutboxMail.attempts,
            OutboxMail.created_at,
        )  # fmt: skip
    )
    rows = connection.execute(statement).all()
    return sorted((Outgoing(*row) for row in rows), key=lambda mail: mail.id)


def mark_sent(db: Session, mail_id: int, now: datetime) -> None:
    """The server took the message. Whoever holds the claim, it is sent now."""
    core(db).execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id, OutboxMail.status == "pending")
        .values(
            status="sent",
            sent_at=now,
            attempts=OutboxMail.attempts + 1,
            last_error=None,
            claimed_by=None,
            claimed_until=None,
        )  # fmt: skip
    )


def mark_failed_attempt(
    db: Session, mail: Outgoing, instance: str, error: str, now: datetime, *, final: bool = False
) -> str | None:
    """Record a failed attempt: ``"retry"`` after :func:`retry_delay`, or ``"final"``
    (the row is ``failed``) after the last attempt or when ``final``. ``None`` when
    ``instance`` no longer holds the row (its lease ran out and another took it)."""
    attempts = mail.attempts + 1
    outcome = "final" if final or attempts >= MAX_ATTEMPTS else "retry"
    result = core(db).execute(
        update(OutboxMail)
        .where(
            OutboxMail.id == mail.id,
            OutboxMail.status == "pending",
            OutboxMail.claimed_by == instance,
        )
        .values(
            status="failed" if outcome == "final" else "pending",
            attempts=attempts,
            next_attempt_at=now + retry_delay(attempts),
            last_error=error[:ERROR_LENGTH],
            claimed_by=None,
            claimed_until=None,
        )  # fmt: skip
    )
    return outcome if result.rowcount else None


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failure: 30 s, doubling, capped at an hour."""
    doublings = min(max(attempts - 1, 0), 16)
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def counts(db: Session) -> dict[str, int]:
    """How many rows wait (``pending``) and how many were given up (``failed``)."""
    statement = (
        select(OutboxMail.status, func.count())
        .where(OutboxMail.status.in_(("pending", "failed")))
        .group_by(OutboxMail.status)
    )
    found = {status: int(n) for status, n in db.execute(statement).all()}
    return {"pending": found.get("pending", 0), "failed": found.get("failed", 0)}
