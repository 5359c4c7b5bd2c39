"""Where a sign-in goes: the IdP an email's domain picks (email-first sign-in),
and the connection ``/sso/{org}/start`` uses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate.accounts.emails import split_email
from hubgate.db.models import Email, Org, OrgDomain, OrgSso, SsoConnection
from hubgate.errors import BadRequest
from hubgate.sso import connections
from hubgate.sso.policy import Policy
from hubgate.sso.states import ConnectionState

__all__ = ["Choice", "connection_for", "offered", "serving_address", "sso_for_email"]


def sso_for_email(
    db: Session, address: str, *, asked: bool = False
) -> tuple[Org, SsoConnection] | None:
    """Email-first sign-in: the org that verified the email's domain, when it signs
    its people in through its IdP (managed mode, enforced) or the person ``asked``
    for single sign-on (whatever the mode: accounts made just in time have no
    password once enforcement is lifted), and the active connection serving that
    domain. ``None`` means: the password form. Malformed, unknown and foreign
    emails all answer ``None``: nothing to enumerate."""
    try:
        domain = split_email(address)[1]
    except BadRequest:
        return None
    row = db.execute(
        select(OrgDomain, OrgSso)
        .outerjoin(OrgSso, OrgSso.org_id == OrgDomain.org_id)
        .where(OrgDomain.domain == domain, OrgDomain.verified_at.is_not(None))
    ).first()
    if row is None or not (asked or _refuses_password(row.OrgSso)):
        return None
    connection = _serving(db, row.OrgDomain)
    org = db.get(Org, row.OrgDomain.org_id)
    return (org, connection) if connection is not None and org is not None else None


def _refuses_password(settings: OrgSso | None) -> bool:
    return settings is not None and Policy.of_row(settings).password_refused


def _serving(db: Session, domain: OrgDomain) -> SsoConnection | None:
    """The domain's own connection when active, else the org's one active connection."""
    active = list(
        db.scalars(
            select(SsoConnection).where(
                SsoConnection.org_id == domain.org_id, SsoConnection.state == ConnectionState.ACTIVE
            )
        )
    )
    own = [c for c in active if c.id == domain.connection_id]
    if own:
        return own[0]
    return active[0] if len(active) == 1 else None


@dataclass(frozen=True, slots=True)
class Choice:
    """Several active connections and nothing to pick one by: the person chooses,
    by their email's domain or from ``options`` (by display name)."""

    options: tuple[connections.Endpoint, ...]


def connection_for(
    db: Session,
    org_id: int,
    found: list[connections.Endpoint],
    wanted: int | None,
    user_id: int | None = None,
) -> connections.Endpoint | Choice:
    """Where ``/sso/{org}/start`` sends the browser, of the org's connections
    ``found`` (:func:`~hubgate.sso.connections.org_endpoints`): the connection asked
    for; else the active one serving the signed-in person's email domain, else the
    org's one active connection, else a :class:`Choice` of its active ones; else its
    one connection under test (a test sign-in)."""
    if wanted is not None:
        found = [c for c in found if c.id == wanted]
    elif any(c.state == ConnectionState.ACTIVE for c in found):
        found = [c for c in found if c.state == ConnectionState.ACTIVE]
        serving = _serving_user(db, org_id, user_id)
        found = [c for c in found if c.id in serving] or found
        if len(found) > 1:
            return Choice(tuple(found))
    if len(found) != 1:
        raise BadRequest(
            "This organization has no single SSO connection to sign in with.",
            code="sso_not_configured",
        )
    return found[0]


def offered(found: list[connections.Endpoint], wanted: int) -> connections.Endpoint:
    """The connection a join or invitation link was asked to go through: one of the
    org's active connections ``found``, never a draft, an inactive one or another
    org's (those are refused, and nothing starts)."""
    for candidate in found:
        if candidate.id == wanted and candidate.state == ConnectionState.ACTIVE:
            return candidate
    raise BadRequest(
        "That is not one of this organization's sign-in connections.",
        code="connection_not_offered",
    )


def serving_address(db: Session, org_id: int, address: str) -> int | None:
    """The connection assigned to the org's verified domain of ``address`` (the
    choice page's email form); ``None`` for a malformed, foreign or unassigned one."""
    try:
        domain = split_email(address[:320])[1]
    except BadRequest:
        return None
    return db.scalar(
        select(OrgDomain.connection_id).where(
            OrgDomain.org_id == org_id, OrgDomain.domain == domain,
            OrgDomain.verified_at.is_not(None),
        )
    )  # fmt: skip


def _serving_user(db: Session, org_id: int, user_id: int | None) -> set[int]:
    """The connections assigned to the domains of the person's verified emails."""
    if user_id is None:
        return set()
    domains = select(Email.domain).where(Email.user_id == user_id, Email.verified_at.is_not(None))
    statement = select(OrgDomain.connection_id).where(
        OrgDomain.org_id == org_id, OrgDomain.domain.in_(domains),
        OrgDomain.connection_id.is_not(None),
    )  # fmt: skip
    return {c for c in db.scalars(statement) if c is not None}
