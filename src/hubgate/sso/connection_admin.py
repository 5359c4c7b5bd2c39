"""A connection's display name and its deletion.

The name is what a signed-out person picks on the choice page when the org has
several active connections (:mod:`hubgate.web.protocols.sso`), so it is bounded,
printable and unique within the org.

Deleting is for connections that sign nobody in: a draft, a verified one never
activated, or an inactive one; an active connection must be deactivated first
(``connection_active``), so deleting never changes who can sign in now. What goes
with it (the database's foreign keys):

- its SSO links (``sso_links``, CASCADE): the (connection, subject) bindings of
  the people who signed in through it while it was active. They can never sign
  anyone in again (the connection is gone and its id is never reused), so they
  go; a person who then signs in through another connection is linked as at a
  first sign-in through it (by verified email). How many went is in the audit
  record (``links_removed``) and the page says so before the admin confirms.
- its domains are kept, with no connection assigned (``SET NULL``);
- the SSO authentications it gave keep their age (``SET NULL``): they end at the
  org's session timeout as before, but no IdP logout can name them any more.

Every function runs in the caller's transaction and never commits; every change
is audited.
"""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import OrgDomain, SsoConnection, SsoLink
from hubgate.errors import BadRequest, Conflict
from hubgate.principals import require
from hubgate.sso.states import ConnectionState

__all__ = ["MAX_NAME", "checked_name", "delete", "links_of", "rename"]

MAX_NAME = 120


def checked_name(name: str) -> str:
    """``name`` without surrounding spaces: 1 to :data:`MAX_NAME` printable characters."""
    shown = name.strip()
    if not 0 < len(shown) <= MAX_NAME or not shown.isprintable():
        raise BadRequest(
            f"A connection's name is 1 to {MAX_NAME} printable characters.", code="invalid_name"
        )
    return shown


def rename(
    db: Session, actor: Actor, principal: Principal, connection: SsoConnection, name: str
) -> None:
    """Give the connection the display name ``name`` (unique within its org)."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    shown = checked_name(name)
    taken = select(SsoConnection.id).where(
        SsoConnection.org_id == connection.org_id, SsoConnection.id != connection.id,
        func.lower(SsoConnection.name) == shown.lower(),
    )  # fmt: skip
    if db.scalar(taken.limit(1)) is not None:
        raise Conflict("Another connection of this org has that name.", code="name_taken")
    old, connection.name = connection.name, shown
    audit.record(
        db, actor, "sso.connection_renamed", org_id=connection.org_id,
        target=f"connection:{connection.id}", data={"from": old, "to": shown},
    )  # fmt: skip


def links_of(db: Session, connection_id: int) -> int:
    """How many SSO links deleting the connection would remove."""
    statement = select(func.count()).where(SsoLink.connection_id == connection_id)
    return int(db.scalar(statement) or 0)


def delete(db: Session, actor: Actor, principal: Principal, connection: SsoConnection) -> int:
    """Delete a connection that is not active; the number of SSO links that went
    with it. The state is checked by the DELETE itself, so a concurrent
    activation wins and this refuses."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    if connection.state == ConnectionState.ACTIVE:
        raise _still_active()
    links = links_of(db, connection.id)
    released = select(OrgDomain.domain).where(OrgDomain.connection_id == connection.id)
    data = {
        "name": connection.name, "kind": connection.kind, "state": connection.state,
        "links_removed": links, "domains_released": sorted(db.scalars(released)),
    }  # fmt: skip
    gone = db.execute(
        sql_delete(SsoConnection)
        .where(SsoConnection.id == connection.id, SsoConnection.state != ConnectionState.ACTIVE)
        .returning(SsoConnection.id)
    ).first()
    if gone is None:
        raise _still_active()
    audit.record(
        db, actor, "sso.connection_deleted", org_id=connection.org_id,
        target=f"connection:{connection.id}", data=data,
    )  # fmt: skip
    db.expunge(connection)
    return links


def _still_active() -> Conflict:
    return Conflict(
        "This connection signs people in: deactivate it before deleting it.",
        code="connection_active",
    )
