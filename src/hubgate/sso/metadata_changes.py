"""What a metadata refresh left for admins: its status, shown on the SSO page, and
an entity id or SSO URL change, applied only when an admin approves it.

A new entity id or SSO URL sends sign-ins somewhere else (or accepts another
issuer), so a refresh never applies one silently
(:mod:`hubgate.sso.metadata_refresh`). A rejected change is remembered: refreshes
do not propose it again (nor audit it again) while the IdP's metadata still names
it, and the SSO page says the IdP still publishes it. A different change is
proposed as usual; metadata back at the connection's values forgets the rejection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import SamlMetadataSource, SsoConnection
from hubgate.errors import Conflict
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sso.connections import stored_settings

__all__ = ["PendingChange", "RefreshStatus", "RejectedChange", "approve", "reject", "status"]


@dataclass(frozen=True, slots=True)
class PendingChange:
    """Old and new entity id and SSO URL (equal when that one is unchanged)."""

    entity_id: tuple[str, str]
    sso_url: tuple[str, str]


@dataclass(frozen=True, slots=True)
class RejectedChange:
    """The entity id and SSO URL an admin rejected, which refreshes keep ignoring."""

    entity_id: str
    sso_url: str


@dataclass(frozen=True, slots=True)
class RefreshStatus:
    """A connection's metadata refresh as its admins see it; ``failing_long`` once it
    has failed for ``HUBGATE_METADATA_REFRESH_FAILING_DAYS``."""

    url: str
    last_attempt_at: datetime | None
    last_result: str | None
    last_error: str | None
    next_due_at: datetime
    failing_since: datetime | None
    failing_long: bool
    pending: PendingChange | None
    rejected: RejectedChange | None


def status(db: Session, rt: Runtime, connection: SsoConnection) -> RefreshStatus | None:
    """The refresh status, or ``None`` for a connection not made from a URL."""
    source = db.get(SamlMetadataSource, connection.id)
    if source is None:
        return None
    limit = timedelta(days=rt.settings.metadata_refresh_failing_days)
    failing_long = source.failing_since is not None and rt.now() - source.failing_since >= limit
    return RefreshStatus(
        source.url, source.last_attempt_at, source.last_result, source.last_error,
        source.next_due_at, source.failing_since, failing_long, _pending(source, connection),
        _rejected(source),
    )  # fmt: skip


def _pending(source: SamlMetadataSource, connection: SsoConnection) -> PendingChange | None:
    if source.pending_entity_id is None or source.pending_sso_url is None:
        return None
    settings = stored_settings(connection)
    return PendingChange(
        (settings["idp_entity_id"], source.pending_entity_id),
        (settings["idp_sso_url"], source.pending_sso_url),
    )


def _rejected(source: SamlMetadataSource) -> RejectedChange | None:
    if source.rejected_entity_id is None or source.rejected_sso_url is None:
        return None
    return RejectedChange(source.rejected_entity_id, source.rejected_sso_url)


def approve(db: Session, actor: Actor, principal: Principal, connection: SsoConnection) -> None:
    """Apply the pending entity id and SSO URL (audited with old and new)."""
    source, change = _held(db, principal, connection)
    settings = stored_settings(connection)
    settings["idp_entity_id"], settings["idp_sso_url"] = change.entity_id[1], change.sso_url[1]
    connection.settings = json.dumps(settings)
    source.pending_entity_id = source.pending_sso_url = None
    source.rejected_entity_id = source.rejected_sso_url = None
    _audit(db, actor, connection, "sso.metadata_change_approved", change)


def reject(db: Session, actor: Actor, principal: Principal, connection: SsoConnection) -> None:
    """Drop the pending change and remember it, so refreshes do not propose it
    again; the connection keeps its entity id and SSO URL."""
    source, change = _held(db, principal, connection)
    source.rejected_entity_id, source.rejected_sso_url = change.entity_id[1], change.sso_url[1]
    source.pending_entity_id = source.pending_sso_url = None
    _audit(db, actor, connection, "sso.metadata_change_rejected", change)


def _held(
    db: Session, principal: Principal, connection: SsoConnection
) -> tuple[SamlMetadataSource, PendingChange]:
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    source = db.get(SamlMetadataSource, connection.id)
    change = None if source is None else _pending(source, connection)
    if source is None or change is None:
        raise Conflict("No metadata change waits for approval.", code="no_pending_change")
    return source, change


def _audit(
    db: Session, actor: Actor, connection: SsoConnection, action: str, change: PendingChange
) -> None:
    audit.record(
        db, actor, action, org_id=connection.org_id, target=f"connection:{connection.id}",
        data={"entity_id": {"from": change.entity_id[0], "to": change.entity_id[1]},
              "sso_url": {"from": change.sso_url[0], "to": change.sso_url[1]}},
    )  # fmt: skip
