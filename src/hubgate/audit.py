"""Audit events: an append-only record of who did what, when, and why not.

Writes go through :func:`record` only; the database refuses UPDATE and DELETE on
the table (see the first migration).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, Integer, bindparam, insert, or_, select
from sqlalchemy.orm import Session

from hubgate.db.audit_sql import connection_of
from hubgate.db.models import AuditDelivery, AuditEvent, AuditStream
from hubgate.db.types import utcnow

__all__ = ["Actor", "AuditFilter", "event_json", "iter_all", "new_trace_id", "query", "record"]


def new_trace_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a label for people to read, the user id if any, and request facts."""

    label: str
    user_id: int | None = None
    client_address: str | None = None
    trace_id: str = field(default_factory=new_trace_id)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(label=label)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    org_id: int | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    trace_id: str | None = None
    reason: str | None = None
    connection_id: int | None = None
    """Sign-in events (``sso.login``, ``sso.login_refused``) through this connection."""
    limit: int = 50


def record(
    db: Session,
    actor: Actor,
    action: str,
    *,
    org_id: int | None = None,
    target: str = "",
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Write the event now, in the caller's transaction (it rolls back with it).

    A Core insert: it names plain ids, so it never waits for pending ORM rows.
    The event is queued for every audit stream that takes it in the same
    transaction (:mod:`hubgate.streams` delivers them later, outside any)."""
    row = {
        "at": utcnow(),
        "org_id": org_id,
        "actor_id": actor.user_id,
        "actor": actor.label,
        "action": action,
        "target": target[:320],
        "reason": reason,
        "trace_id": actor.trace_id,
        "client_address": actor.client_address,
        "data": json.dumps(data or {}, sort_keys=True),
    }
    connection = db.connection()
    event_id = connection.execute(_INSERT, row).scalar_one()
    if org_id is None:
        connection.execute(_ENQUEUE_OPERATOR, {"event_id": event_id})
    else:
        connection.execute(_ENQUEUE_ORG, {"event_id": event_id, "org_id": org_id})


_INSERT = insert(AuditEvent).returning(AuditEvent.id)


def _enqueue(wanted: ColumnElement[bool]) -> Insert:
    """One queued delivery per stream ``wanted`` picks; none (one cheap statement)
    when there is no stream. Built once: building it per event cost more than
    running it."""
    streams = select(AuditStream.id, bindparam("event_id", type_=Integer)).where(wanted)
    return insert(AuditDelivery).from_select(["stream_id", "event_id"], streams)


_OPERATOR_WIDE = AuditStream.org_id.is_(None)
_ENQUEUE_OPERATOR = _enqueue(_OPERATOR_WIDE)
"""An event of no org: the operator-wide streams."""
_ENQUEUE_ORG = _enqueue(or_(_OPERATOR_WIDE, AuditStream.org_id == bindparam("org_id")))
"""An org's event: its org's streams and the operator-wide ones."""


def query(db: Session, where: AuditFilter) -> list[AuditEvent]:
    """Newest first; page on with ``before_id`` set to the last id seen."""
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(where.limit)
    if where.org_id is not None:
        statement = statement.where(AuditEvent.org_id == where.org_id)
    if where.actor:
        statement = statement.where(AuditEvent.actor == where.actor)
    if where.action:
        statement = statement.where(AuditEvent.action == where.action)
    if where.since:
        statement = statement.where(AuditEvent.at >= where.since)
    if where.until:
        statement = statement.where(AuditEvent.at < where.until)
    if where.before_id:
        statement = statement.where(AuditEvent.id < where.before_id)
    if where.trace_id:
        statement = statement.where(AuditEvent.trace_id == where.trace_id)
    if where.reason:
        statement = statement.where(AuditEvent.reason == where.reason)
    if where.connection_id is not None:
        statement = statement.where(connection_of() == str(where.connection_id))
    return list(db.scalars(statement))


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "org_id": event.org_id,
        "actor": event.actor,
        "actor_id": event.actor_id,
        "action": event.action,
        "target": event.target,
        "reason": event.reason,
        "trace_id": event.trace_id,
        "client_address": event.client_address,
        "data": json.loads(event.data),
    }


def iter_all(db: Session, where: AuditFilter, page: int = 500) -> Iterator[AuditEvent]:
    """Every matching event, newest first, fetched page by page (for exports)."""
    cursor = where.before_id
    while True:
        batch = query(db, replace(where, before_id=cursor, limit=page))
        yield from batch
        if len(batch) < page:
            return
        cursor = batch[-1].id
