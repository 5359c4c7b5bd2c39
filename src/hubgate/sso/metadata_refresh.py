"""SAML metadata that refreshes itself: a connection made from a metadata URL
reads it again every ``HUBGATE_METADATA_REFRESH_HOURS``, and on demand.

A refresh takes the connection's lease (a conditional UPDATE with an expiry, so
one instance alone refreshes it and nothing is held across the network call),
fetches the document conditionally (ETag / Last-Modified) through the bounded
fetcher outside any transaction, then applies it in one short transaction:

- a new signing certificate is added at once (any listed one verifies);
- one the metadata no longer lists keeps verifying until a listed one has
  verified a sign-in (:mod:`hubgate.sso.certificate_rollover`), so a rollover
  never locks anyone out;
- a new entity id or SSO URL is not applied: it waits for an admin
  (:mod:`hubgate.sso.metadata_changes`).

Every change and every failure is audited; the SSO page shows the last result,
the next due time, and a banner once refresh has failed for
``HUBGATE_METADATA_REFRESH_FAILING_DAYS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget
from hubgate.audit import Actor
from hubgate.db.models import SamlMetadataSource, SsoConnection
from hubgate.errors import Conflict, HubgateError, NotFound
from hubgate.principals import OrgScope, require
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.certificate_rollover import RETIRING
from hubgate.sso.fetch import Fetched, fetch_if_changed
from hubgate.sso.saml.keys import certificate_fingerprint
from hubgate.sso.saml.metadata import IdpMetadata, parse_idp_metadata

__all__ = [
    "LEASE",
    "Fetcher",
    "Refreshed",
    "refresh",
    "refresh_due",
]

LEASE = timedelta(minutes=5)
"""How long a refresher holds a connection: far longer than the fetch's timeouts."""
RETRY = timedelta(hours=1)
"""How soon a failed refresh is tried again (sooner than the schedule)."""
DUE_PER_PASS = 20
MAX_RETIRING = 8
"""Certificates kept after the metadata dropped them, newest first: metadata that
rotates without a sign-in in between cannot grow a connection without bound."""

Fetcher = Callable[[str, str | None, str | None], Fetched | None]
"""(url, ETag, Last-Modified) -> the document, or ``None`` when not modified."""


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one refresh did: ``result`` is ``unchanged``, ``changed`` or ``failed``;
    certificates by fingerprint."""

    result: str
    added: tuple[str, ...] = ()
    retiring: tuple[str, ...] = ()
    pending: bool = False
    reason: str | None = None
    single_logout: tuple[str | None, str | None] | None = None
    """The IdP's Single Logout URL before and after, when the refresh changed it
    (``None`` on a side: the IdP had, or now has, no Single Logout)."""


@dataclass(frozen=True, slots=True)
class _Lease:
    url: str
    etag: str | None
    last_modified: str | None


def network_fetcher(rt: Runtime) -> Fetcher:
    """The bounded fetcher that refuses private addresses unless allowed."""
    allow = rt.settings.allow_private_idp_urls

    def fetch(url: str, etag: str | None, last_modified: str | None) -> Fetched | None:
        return fetch_if_changed(url, allow_private=allow, etag=etag, last_modified=last_modified)

    return fetch


def refresh(
    rt: Runtime,
    actor: Actor,
    connection_id: int,
    *,
    scope: OrgScope | None = None,
    fetcher: Fetcher | None = None,
) -> Refreshed:
    """Refresh one connection now (an admin's button, the CLI, the schedule);
    ``scope`` names an admin of its org, else the caller is the operator or the
    schedule. Another refresher holding the lease: ``refresh_in_progress``."""
    lease = _take_lease(rt, connection_id, scope)
    if lease is None:
        raise Conflict("This connection's metadata is being refreshed.", code="refresh_in_progress")
    try:
        fetched = (fetcher or network_fetcher(rt))(lease.url, lease.etag, lease.last_modified)
        idp = None if fetched is None else parse_idp_metadata(fetched.body)
    except HubgateError as exc:
        return _failed(rt, actor, connection_id, exc.code)
    with rt.db.transaction() as db:
        return _apply(db, rt, actor, connection_id, fetched, idp)


def refresh_due(rt: Runtime, *, fetcher: Fetcher | None = None) -> int:
    """Refresh the connections whose time has come (the background job); how many
    it tried. One another instance holds, or one deleted meanwhile, is skipped."""
    actor = Actor.system("metadata-refresh")
    done = 0
    for connection_id in _due(rt):
        try:
            refresh(rt, actor, connection_id, fetcher=fetcher)
        except (Conflict, NotFound):
            continue
        done += 1
    return done


def _due(rt: Runtime) -> list[int]:
    now = rt.now()
    statement = (
        select(SamlMetadataSource.connection_id)
        .where(SamlMetadataSource.next_due_at <= now, _lease_free(now))
        .order_by(SamlMetadataSource.next_due_at)
        .limit(DUE_PER_PASS)
    )
    with rt.db.transaction() as db:
        return list(db.scalars(statement))


def _lease_free(now: datetime) -> ColumnElement[bool]:
    lease = SamlMetadataSource.lease_until
    return or_(lease.is_(None), lease <= now)


def _take_lease(rt: Runtime, connection_id: int, scope: OrgScope | None) -> _Lease | None:
    """The lease, by a conditional UPDATE that only one refresher wins; ``None``
    when another holds it. A connection without a metadata URL is refused."""
    now = rt.now()
    with rt.db.transaction() as db:
        _check_access(db, connection_id, scope)
        taken = db.execute(
            update(SamlMetadataSource)
            .where(SamlMetadataSource.connection_id == connection_id, _lease_free(now))
            .values(lease_until=now + LEASE)
            .returning(
                SamlMetadataSource.url,
                SamlMetadataSource.etag,
                SamlMetadataSource.last_modified,
            )
        ).first()
        if taken is None and db.get(SamlMetadataSource, connection_id) is None:
            raise Conflict(
                "This connection was not made from a metadata URL.", code="no_metadata_url"
            )
    return None if taken is None else _Lease(*taken)


def _check_access(db: Session, connection_id: int, scope: OrgScope | None) -> None:
    """An admin's refresh reaches only their org's connections (others are 404);
    without ``scope`` the operator or the schedule asks."""
    if scope is None:
        connections.get(db, connection_id)
        return
    org, principal = scope(db)
    require(principal, Action.ADMIN, OrgTarget(org.id))
    connections.get(db, connection_id, org_id=org.id)


def _failed(rt: Runtime, actor: Actor, connection_id: int, reason: str) -> Refreshed:
    """A refresh that could not read or use the metadata: audited, retried sooner."""
    now = rt.now()
    with rt.db.transaction() as db:
        source = db.get(SamlMetadataSource, connection_id)
        connection = db.get(SsoConnection, connection_id)
        if source is None or connection is None:
            return Refreshed("failed", reason=reason)
        source.failing_since = source.failing_since or now
        _finish(source, now, "failed", now + min(RETRY, _every(rt)), reason)
        audit.record(
            db, actor, "sso.metadata_refresh_failed", org_id=connection.org_id,
            target=f"connection:{connection_id}", reason=reason, data={"url": source.url},
        )  # fmt: skip
    return Refreshed("failed", reason=reason)


def _every(rt: Runtime) -> timedelta:
    return timedelta(hours=rt.settings.metadata_refresh_hours)


def _finish(
    source: SamlMetadataSource, now: datetime, result: str, due: datetime, reason: str | None
) -> None:
    source.last_attempt_at, source.last_result, source.last_error = now, result, reason
    source.next_due_at, source.lease_until = due, None


def _apply(
    db: Session,
    rt: Runtime,
    actor: Actor,
    connection_id: int,
    fetched: Fetched | None,
    idp: IdpMetadata | None,
) -> Refreshed:
    source = db.get(SamlMetadataSource, connection_id)
    connection = db.get(SsoConnection, connection_id)
    if source is None or connection is None:  # deleted while we fetched
        return Refreshed("unchanged")
    now = rt.now()
    if fetched is None or idp is None:
        source.failing_since = None
        _finish(source, now, "unchanged", now + _every(rt), None)
        return Refreshed("unchanged")
    outcome = _merge(source, connection, idp)
    source.etag, source.last_modified, source.failing_since = (
        fetched.etag,
        fetched.last_modified,
        None,
    )
    _finish(source, now, outcome.result, now + _every(rt), None)
    if outcome.result == "changed":
        audit.record(
            db, actor, "sso.metadata_refreshed", org_id=connection.org_id,
            target=f"connection:{connection_id}",
            data={"added": list(outcome.added), "retiring": list(outcome.retiring),
                  "pending": _pending_data(source, connection) if outcome.pending else None,
                  "single_logout": _moved(outcome.single_logout)},
        )  # fmt: skip
    return outcome


def _merge(source: SamlMetadataSource, connection: SsoConnection, idp: IdpMetadata) -> Refreshed:
    """Fold the IdP's metadata into the connection's settings: certificates at once
    (retiring, not dropping, the ones it no longer lists) and the Single Logout
    service at once (whoever can change the metadata can already add a signing
    certificate), the entity id and SSO URL only as a pending change."""
    settings = connections.stored_settings(connection)
    current: list[str] = settings["idp_certificates"]
    listed = list(idp.certificates)
    added = [c for c in listed if c not in current]
    retiring = [c for c in current if c not in listed][-MAX_RETIRING:]
    kept = [c for c in current if c in listed or c in retiring]
    was_retiring = settings.get(RETIRING, [])
    newly_retiring = [c for c in retiring if c not in was_retiring]
    certificates_changed = bool(added) or retiring != was_retiring or kept != current
    if certificates_changed:
        settings["idp_certificates"] = [*kept, *added]
        settings[RETIRING] = retiring
    single_logout = _single_logout_moved(settings, idp)
    if certificates_changed or single_logout is not None:
        connection.settings = json.dumps(settings)
    pending = _propose(source, settings, idp)
    changed = certificates_changed or pending or single_logout is not None
    return Refreshed(
        "changed" if changed else "unchanged",
        added=tuple(map(certificate_fingerprint, added)),
        retiring=tuple(map(certificate_fingerprint, newly_retiring)),
        pending=pending,
        single_logout=single_logout,
    )


def _single_logout_moved(
    settings: dict[str, object], idp: IdpMetadata
) -> tuple[str | None, str | None] | None:
    """Take the IdP's Single Logout service into ``settings``; its URL before and
    after if that changed anything (``None`` if nothing)."""
    published = connections.slo_settings(idp.single_logout)
    kept = {key: settings[key] for key in connections.SLO_SETTINGS if key in settings}
    if kept == published:
        return None
    for key in connections.SLO_SETTINGS:
        settings.pop(key, None)
    settings.update(published)
    return _text_or_none(kept.get("idp_slo_url")), published.get("idp_slo_url")


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _moved(change: tuple[str | None, str | None] | None) -> dict[str, str | None] | None:
    return None if change is None else {"from": change[0], "to": change[1]}


def _propose(source: SamlMetadataSource, settings: dict[str, object], idp: IdpMetadata) -> bool:
    """Hold a new entity id or SSO URL for an admin, unless it is the one an admin
    rejected; True if the proposal is new."""
    same = idp.entity_id == settings["idp_entity_id"] and idp.sso_url == settings["idp_sso_url"]
    if same:
        source.rejected_entity_id = source.rejected_sso_url = None
    rejected = (idp.entity_id, idp.sso_url) == (source.rejected_entity_id, source.rejected_sso_url)
    proposal = (None, None) if same or rejected else (idp.entity_id, idp.sso_url)
    new = proposal != (source.pending_entity_id, source.pending_sso_url) and proposal[0] is not None
    source.pending_entity_id, source.pending_sso_url = proposal
    return new


def _pending_data(source: SamlMetadataSource, connection: SsoConnection) -> dict[str, object]:
    settings = connections.stored_settings(connection)
    return {
        "entity_id": {"from": settings["idp_entity_id"], "to": source.pending_entity_id},
        "sso_url": {"from": settings["idp_sso_url"], "to": source.pending_sso_url},
    }
