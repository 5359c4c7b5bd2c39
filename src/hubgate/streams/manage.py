"""Audit streams as their owners see them: an org's admins add and remove the
org's streams (audited), the operator's come from settings
(``HUBGATE_AUDIT_WEBHOOK_URL``, ``HUBGATE_AUDIT_SYSLOG_URL``), and both read each
stream's health: queued events, last error, failing since when.

A webhook's signing secret is made here, shown once, and sealed at rest."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.config import Settings
from hubgate.db.models import AuditStream, Org
from hubgate.errors import BadRequest, Forbidden, NotFound
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.streams.queue import queued_counts
from hubgate.streams.targets import check_url

__all__ = [
    "MAX_STREAMS_PER_ORG",
    "StreamStatus",
    "create_stream",
    "list_streams",
    "operator_streams",
    "remove_stream",
    "sync_operator_streams",
]

MAX_STREAMS_PER_ORG = 5


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A stream and its health, for the page and the API (never its secret)."""

    id: int
    kind: str
    url: str
    origin: str
    created_at: datetime
    queued: int
    failing_since: datetime | None
    last_error: str | None
    last_delivered_at: datetime | None
    next_attempt_at: datetime
    dropped: int

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


def list_streams(db: Session, principal: Principal, org: Org) -> list[StreamStatus]:
    """The org's streams, for its admins."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    rows = db.scalars(
        select(AuditStream).where(AuditStream.org_id == org.id).order_by(AuditStream.id)
    )
    return _statuses(db, list(rows))


def operator_streams(db: Session) -> list[StreamStatus]:
    """The operator's streams (every org's events), from settings and the CLI."""
    rows = db.scalars(
        select(AuditStream).where(AuditStream.org_id.is_(None)).order_by(AuditStream.id)
    )
    return _statuses(db, list(rows))


def _statuses(db: Session, rows: list[AuditStream]) -> list[StreamStatus]:
    counts = queued_counts(db) if rows else {}
    return [
        StreamStatus(
            row.id,
            row.kind,
            row.url,
            row.origin,
            row.created_at,
            counts.get(row.id, 0),
            row.failing_since,
            row.last_error,
            row.last_delivered_at,
            row.next_attempt_at,
            row.dropped,
        )  # fmt: skip
        for row in rows
    ]


def create_stream(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal,
    org: Org | None,
    kind: str,
    url: str,
) -> tuple[StreamStatus, str | None]:
    """A new stream of the org's events (``org`` None: every org's, the operator's
    alone); for a webhook, its signing secret, shown this once. No network call:
    the destination's addresses are checked at each delivery."""
    _require_owner(principal, org)
    checked = check_url(kind, url, allow_private=rt.settings.allow_private_idp_urls)
    org_id = org.id if org else None
    if org_id is not None and len(_streams_of(db, org_id)) >= MAX_STREAMS_PER_ORG:
        raise BadRequest("An org streams to at most 5 destinations.", code="too_many_streams")
    secret = secrets.token_urlsafe(32) if kind == "webhook" else None
    row = AuditStream(
        org_id=org_id, kind=kind, url=checked, origin="admin" if org else "operator",
        secret=rt.sealer.seal(secret) if secret else None, attempts=0, dropped=0,
        next_attempt_at=rt.now(), created_at=rt.now(),
    )  # fmt: skip
    db.add(row)
    db.flush()
    audit.record(
        db, actor, "audit.stream_added", org_id=org_id, target=checked,
        data={"stream": row.id, "kind": kind},
    )  # fmt: skip
    return _statuses(db, [row])[0], secret


def remove_stream(
    db: Session, actor: Actor, principal: Principal, org: Org | None, stream_id: int
) -> None:
    """The stream goes, and its queue with it; the removal is audited (and so
    streamed to the other streams)."""
    _require_owner(principal, org)
    row = db.get(AuditStream, stream_id)
    org_id = org.id if org else None
    if row is None or row.org_id != org_id or row.origin == "settings":
        raise NotFound("No such audit stream.", code="stream_not_found")
    db.delete(row)
    db.flush()
    audit.record(
        db, actor, "audit.stream_removed", org_id=org_id, target=row.url,
        data={"stream": stream_id, "kind": row.kind},
    )  # fmt: skip


def _require_owner(principal: Principal, org: Org | None) -> None:
    """An org's admins own its streams; the operator alone owns the rest."""
    if org is not None:
        require(principal, Action.ADMIN, OrgTarget(org.id))
    elif not principal.is_operator:
        raise Forbidden("Only the operator streams every org's events.")


def _streams_of(db: Session, org_id: int) -> list[int]:
    return list(db.scalars(select(AuditStream.id).where(AuditStream.org_id == org_id)))


def sync_operator_streams(db: Session, settings: Settings) -> None:
    """One stream per operator setting, as configured now: added, pointed at a
    changed URL, or removed (with its queue) when the setting is unset."""
    wanted = {"webhook": settings.audit_webhook_url, "syslog": settings.audit_syslog_url}
    found = {
        row.kind: row
        for row in db.scalars(select(AuditStream).where(AuditStream.origin == "settings"))
    }
    loopback_http = settings.allow_private_idp_urls
    for kind, url in wanted.items():
        row = found.get(kind)
        if url is None:
            if row is not None:
                db.execute(delete(AuditStream).where(AuditStream.id == row.id))
        elif row is None:
            _add_setting_stream(db, kind, check_url(kind, url, allow_private=loopback_http))
        elif row.url != url:
            row.url = check_url(kind, url, allow_private=loopback_http)
    db.flush()


def _add_setting_stream(db: Session, kind: str, url: str) -> None:
    """Added unless another instance has just added it (the unique index on the
    settings' streams refuses a second)."""
    try:
        with db.begin_nested():
            db.add(AuditStream(org_id=None, kind=kind, url=url, origin="settings"))
    except IntegrityError:
        return
