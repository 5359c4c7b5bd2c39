"""What the SSO page warns an org admin about when several connections are active:
each warning says what a signed-out person will meet (the choice page of
:mod:`hubgate.web.protocols.sso`, email-first sign-in of
:func:`hubgate.sso.routing.sso_for_email`).

A verified domain names at most one connection (``OrgDomain.connection_id``), so
two active connections "serve" the same people when they trust the same IdP (one
SAML entity id or OIDC issuer); a domain is served by none when its connection is
missing or not active.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate.db.models import OrgDomain, SsoConnection
from hubgate.sso.connections import stored_settings
from hubgate.sso.states import ConnectionState

__all__ = ["warnings"]


def warnings(db: Session, org_id: int) -> list[str]:
    """The warnings for the org's SSO page; none unless several connections are active."""
    active = list(
        db.scalars(
            select(SsoConnection)
            .where(SsoConnection.org_id == org_id, SsoConnection.state == ConnectionState.ACTIVE)
            .order_by(SsoConnection.id)
        )
    )
    if len(active) < 2:
        return []
    return _same_idp(active) + _same_name(active) + _unserved(db, org_id, active)


def _idp(connection: SsoConnection) -> str:
    settings = stored_settings(connection)
    return str(settings.get("idp_entity_id") or settings.get("provider", {}).get("issuer", ""))


def _same_idp(active: list[SsoConnection]) -> list[str]:
    by_idp: dict[str, list[str]] = defaultdict(list)
    for connection in active:
        by_idp[_idp(connection)].append(connection.name)
    return [
        f"The active connections {_listed(names)} all trust {idp}: a signed-out person is "
        "offered each of them, and their sign-in through one is linked apart from the "
        "others. Deactivate all but one."
        for idp, names in by_idp.items()
        if len(names) > 1
    ]


def _same_name(active: list[SsoConnection]) -> list[str]:
    by_name: dict[str, int] = defaultdict(int)
    for connection in active:
        by_name[connection.name.lower()] += 1
    return [
        f"Several active connections are named {name!r}: a signed-out person choosing an "
        "identity provider cannot tell them apart. Rename them."
        for name, seen in by_name.items()
        if seen > 1
    ]


def _unserved(db: Session, org_id: int, active: list[SsoConnection]) -> list[str]:
    ids = {c.id for c in active}
    statement = select(OrgDomain.domain, OrgDomain.connection_id).where(
        OrgDomain.org_id == org_id, OrgDomain.verified_at.is_not(None)
    )
    return [
        f"No active connection serves {domain}: a signed-out person with an address there "
        "is asked to pick an identity provider from a list, and email-first sign-in cannot "
        "send them to one. Assign the domain a connection."
        for domain, connection_id in db.execute(statement.order_by(OrgDomain.domain))
        if connection_id not in ids
    ]


def _listed(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]
