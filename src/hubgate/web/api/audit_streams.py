"""``/api/v1/orgs/{org}/audit-streams``: where the org's audit events are streamed
(org admins): list with each stream's health, add (a webhook's secret is in the
answer this once), remove."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field

from hubgate.streams import manage
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId, Strict

__all__ = ["router"]

router = api_router("/orgs/{org}/audit-streams", ["audit"])


class AuditStreamCreate(Strict):
    kind: Literal["webhook", "syslog"]
    url: Annotated[str, Field(min_length=1, max_length=500)]


class AuditStreamPublic(BaseModel):
    id: int
    kind: str
    url: str
    created_at: datetime
    queued: int
    failing: bool
    failing_since: datetime | None
    last_error: str | None
    last_delivered_at: datetime | None
    next_attempt_at: datetime
    dropped: int


class AuditStreamCreated(AuditStreamPublic):
    secret: str | None
    """The webhook's HMAC-SHA256 key, shown this once."""


def public(status: manage.StreamStatus) -> AuditStreamPublic:
    return AuditStreamPublic(
        id=status.id, kind=status.kind, url=status.url, created_at=status.created_at,
        queued=status.queued, failing=status.failing, failing_since=status.failing_since,
        last_error=status.last_error, last_delivered_at=status.last_delivered_at,
        next_attempt_at=status.next_attempt_at, dropped=status.dropped,
    )  # fmt: skip


@router.get("", response_model=list[AuditStreamPublic])
def list_streams(org: str, rt: Rt, credential: CurrentCredential) -> list[AuditStreamPublic]:
    """The org's streams: queued events, and since when and why one is failing."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        return [public(status) for status in manage.list_streams(db, principal, found)]


@router.post("", status_code=201, response_model=AuditStreamCreated)
def add_stream(
    org: str, body: AuditStreamCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> AuditStreamCreated:
    """A new stream of the org's events, from the next event on."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        status, secret = manage.create_stream(db, rt, actor, principal, found, body.kind, body.url)
        return AuditStreamCreated(**public(status).model_dump(), secret=secret)


@router.delete("/{stream_id}", status_code=204)
def remove_stream(
    org: str, stream_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """The stream goes, with the events it had still to take."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        manage.remove_stream(db, actor_of(request, rt, credential), principal, found, stream_id)
    return Response(status_code=204)
