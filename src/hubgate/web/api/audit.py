"""``/api/v1/orgs/{org}/audit``: the org's audit log, paged or exported as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Query
from fastapi.responses import StreamingResponse

from hubgate import audit
from hubgate.access import (
    Action,
    OrgTarget,
)
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.web import schemas
from hubgate.web.api.common import (
    NO_NUL,
    api_router,
)
from hubgate.web.context import (
    CurrentCredential,
    Rt,
    org_scope,
)
from hubgate.web.schemas import MAX_ROW_ID

__all__ = ["router"]

router = api_router()


def _audit_filter(
    org_id: int,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> audit.AuditFilter:
    return audit.AuditFilter(
        org_id=org_id,
        actor=actor,
        action=action,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )


@router.get("/orgs/{org}/audit", response_model=schemas.AuditPage, tags=["audit"])
def list_audit(
    org: str, rt: Rt, credential: CurrentCredential,
    actor: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: datetime | None = None, until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> schemas.AuditPage:  # fmt: skip
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        events = audit.query(
            db, _audit_filter(found.id, actor, action, since, until, before_id, limit)
        )
        page = [schemas.AuditEventPublic(**audit.event_json(e)) for e in events]
        return schemas.AuditPage(
            events=page, next_before_id=events[-1].id if len(events) == limit else None
        )


@router.get("/orgs/{org}/audit/export", tags=["audit"], response_class=StreamingResponse)
def export_audit(
    org: str, rt: Rt, credential: CurrentCredential,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: datetime | None = None, until: datetime | None = None,
) -> StreamingResponse:  # fmt: skip
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
    where = _audit_filter(found.id, None, action, since, until, None, 500)
    return StreamingResponse(_jsonl(rt, where), media_type="application/x-ndjson")


def _jsonl(rt: Runtime, where: audit.AuditFilter) -> Iterator[bytes]:
    with rt.db.sessions() as db:
        for event in audit.iter_all(db, where):
            yield json.dumps(audit.event_json(event)).encode() + b"\n"
