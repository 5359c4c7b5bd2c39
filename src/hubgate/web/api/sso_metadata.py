"""A SAML connection's metadata refresh in the JSON API (org admins): its status,
a refresh now, and the verdict on an entity id or SSO URL change it found."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import NotFound
from hubgate.principals import Credential, require
from hubgate.runtime import Runtime
from hubgate.sso import connections, metadata_changes, metadata_refresh
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId
from hubgate.web.threads import on_network_thread

__all__ = ["router"]

router = api_router("/orgs/{org}/sso/connections/{connection_id}/metadata", ["sso"])


class Change(BaseModel):
    old: str
    new: str


class PendingChangePublic(BaseModel):
    entity_id: Change
    sso_url: Change


class RejectedChangePublic(BaseModel):
    """The change an admin rejected; refreshes ignore it while the IdP names it."""

    entity_id: str
    sso_url: str


class MetadataStatusPublic(BaseModel):
    url: str
    last_attempt_at: datetime | None
    last_result: str | None
    last_error: str | None
    next_due_at: datetime
    failing_since: datetime | None
    failing_long: bool
    pending: PendingChangePublic | None
    rejected: RejectedChangePublic | None


class SingleLogoutMoved(BaseModel):
    old: str | None
    new: str | None


class RefreshedPublic(BaseModel):
    """What a refresh did; certificates by SHA-256 fingerprint."""

    result: str
    added: list[str]
    retiring: list[str]
    pending: bool
    reason: str | None
    single_logout_url: SingleLogoutMoved | None
    """The IdP's Single Logout URL before and after, when the refresh changed it."""


def _public(found: metadata_changes.RefreshStatus | None) -> MetadataStatusPublic:
    if found is None:
        raise NotFound("This connection was not made from a metadata URL.")
    pending = found.pending
    return MetadataStatusPublic(
        url=found.url, last_attempt_at=found.last_attempt_at, last_result=found.last_result,
        last_error=found.last_error, next_due_at=found.next_due_at,
        failing_since=found.failing_since, failing_long=found.failing_long,
        pending=None if pending is None else PendingChangePublic(
            entity_id=Change(old=pending.entity_id[0], new=pending.entity_id[1]),
            sso_url=Change(old=pending.sso_url[0], new=pending.sso_url[1]),
        ),
        rejected=None if found.rejected is None else RejectedChangePublic(
            entity_id=found.rejected.entity_id, sso_url=found.rejected.sso_url
        ),
    )  # fmt: skip


@router.get("", response_model=MetadataStatusPublic)
def metadata_status(
    org: str, connection_id: RowId, rt: Rt, credential: CurrentCredential
) -> MetadataStatusPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        row = connections.get(db, connection_id, org_id=found.id)
        return _public(metadata_changes.status(db, rt, row))


@router.post("/refresh", response_model=RefreshedPublic)
async def refresh_metadata(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> RefreshedPublic:
    """Read the metadata now (conditionally); a failure is answered and audited. On
    a network thread (:mod:`hubgate.web.threads`)."""
    return await on_network_thread(_refresh, org, connection_id, request, rt, credential)


def _refresh(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> RefreshedPublic:
    done = metadata_refresh.refresh(
        rt, actor_of(request, rt, credential), connection_id,
        scope=lambda db: org_scope(db, credential, org),
    )  # fmt: skip
    return RefreshedPublic(
        result=done.result, added=list(done.added), retiring=list(done.retiring),
        pending=done.pending, reason=done.reason,
        single_logout_url=None if done.single_logout is None else SingleLogoutMoved(
            old=done.single_logout[0], new=done.single_logout[1]
        ),
    )  # fmt: skip


@router.post("/approve", response_model=MetadataStatusPublic)
def approve_change(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> MetadataStatusPublic:
    """Apply the entity id and SSO URL the last refresh found."""
    return _verdict(org, connection_id, request, rt, credential, metadata_changes.approve)


@router.post("/reject", response_model=MetadataStatusPublic)
def reject_change(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> MetadataStatusPublic:
    """Keep the connection's entity id and SSO URL; drop the change (and let
    refreshes ignore it while the IdP's metadata names it)."""
    return _verdict(org, connection_id, request, rt, credential, metadata_changes.reject)


Verdict = Callable[[Session, Actor, Principal, SsoConnection], None]


def _verdict(
    org: str, connection_id: int, request: Request, rt: Runtime, credential: Credential,
    verdict: Verdict,
) -> MetadataStatusPublic:  # fmt: skip
    """The admin's verdict on the pending change, in one transaction; the status after."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.get(db, connection_id, org_id=found.id)
        verdict(db, actor_of(request, rt, credential), principal, row)
        return _public(metadata_changes.status(db, rt, row))
