"""A person's sessions ("devices") and SSO identities, and an org admin ending a
member's org sessions.

Sessions are named by their row id, never by the hash of their cookie. Each one
lists the SSO authentications it holds with the time each stops counting
(:func:`hubgate.freshness.fresh_until`). Functions run in the caller's
transaction, never commit, and audit every change; a refusal is audited and
returned as :class:`~hubgate.account_security.refusals.Refused`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.account_security.refusals import Refused, refuse
from hubgate.accounts import sessions, users
from hubgate.accounts.emails import normalize_email
from hubgate.audit import Actor
from hubgate.db.models import (
    Membership,
    Org,
    OrgSso,
    SsoAuthentication,
    SsoConnection,
    SsoLink,
    User,
    WebSession,
)
from hubgate.errors import BadRequest, HubgateError, NotFound
from hubgate.freshness import fresh_until
from hubgate.principals import require
from hubgate.sso.policy import DEFAULT_TIMEOUT

__all__ = [
    "HeldSso",
    "LinkView",
    "SessionView",
    "end_member_sessions",
    "end_other_sessions",
    "end_session",
    "list_links",
    "list_sessions",
    "short_agent",
    "unlink",
]

_AGENT = 60


@dataclass(frozen=True, slots=True)
class HeldSso:
    org: str
    connection: str | None
    authenticated_at: datetime
    fresh_until: datetime


@dataclass(frozen=True, slots=True)
class SessionView:
    id: int
    created_at: datetime
    last_used_at: datetime
    client: str
    client_address: str | None
    current: bool
    sso: list[HeldSso]


@dataclass(frozen=True, slots=True)
class LinkView:
    id: int
    org: str
    connection: str
    subject: str
    linked_at: datetime
    last_sign_in_at: datetime


def short_agent(user_agent: str | None) -> str:
    """The browser and system for people to recognise, not the whole header."""
    if not user_agent:
        return "unknown client"
    text = " ".join(user_agent.split())
    return text if len(text) <= _AGENT else text[: _AGENT - 1] + "…"


# -- sessions ----------------------------------------------------------------------


def list_sessions(
    db: Session, user_id: int, current: int | None, lifetimes: sessions.Lifetimes, now: datetime
) -> list[SessionView]:
    """The account's live sessions, newest use first."""
    rows = db.scalars(
        select(WebSession)
        .where(
            WebSession.user_id == user_id,
            WebSession.expires_at > now,
            WebSession.last_seen_at > now - lifetimes.idle,
        )
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())
    )
    held = _held(db, user_id)
    return [
        SessionView(
            id=row.id,
            created_at=row.created_at,
            last_used_at=row.last_seen_at,
            client=short_agent(row.user_agent),
            client_address=row.client_address,
            current=row.id == current,
            sso=held.get(row.id, []),
        )  # fmt: skip
        for row in rows
    ]


def _held(db: Session, user_id: int) -> dict[int, list[HeldSso]]:
    """The SSO authentications of the account's sessions, by session id."""
    statement = (
        select(SsoAuthentication, Org.name, SsoConnection.name, OrgSso.session_timeout_seconds)
        .join(Org, Org.id == SsoAuthentication.org_id)
        .outerjoin(SsoConnection, SsoConnection.id == SsoAuthentication.connection_id)
        .outerjoin(OrgSso, OrgSso.org_id == SsoAuthentication.org_id)
        .where(SsoAuthentication.user_id == user_id)
        .order_by(Org.name, SsoAuthentication.authenticated_at.desc())
    )
    found: dict[int, list[HeldSso]] = {}
    for auth, org, connection, timeout in db.execute(statement):
        span = timedelta(seconds=timeout) if timeout else DEFAULT_TIMEOUT
        until = fresh_until(auth.authenticated_at, auth.idp_expires_at, span)
        found.setdefault(auth.session_id, []).append(
            HeldSso(org, connection, auth.authenticated_at, until)
        )
    return found


def end_session(db: Session, actor: Actor, user_id: int, session_id: int) -> Refused | None:
    """End one of the account's sessions (another account's answers 404)."""
    row = db.get(WebSession, session_id)
    if row is None or row.user_id != user_id:
        error = NotFound("No such session.")
        return refuse(db, actor, "session.end_refused", f"session:{session_id}", error)
    sessions.end_by_id(db, session_id)
    audit.record(db, actor, "session.ended", target=f"session:{session_id}")
    return None


def end_other_sessions(db: Session, actor: Actor, user_id: int, keep: int | None) -> int:
    """End every session of the account but ``keep`` (the caller's own, if any)."""
    ended = sessions.end_all(db, user_id, keep=keep)
    audit.record(db, actor, "session.ended_others", target=f"user:{user_id}",
                 data={"ended": ended})  # fmt: skip
    return ended


# -- SSO identities ------------------------------------------------------------------


def list_links(db: Session, user_id: int) -> list[LinkView]:
    statement = (
        select(SsoLink, Org.name, SsoConnection.name)
        .join(SsoConnection, SsoConnection.id == SsoLink.connection_id)
        .join(Org, Org.id == SsoConnection.org_id)
        .where(SsoLink.user_id == user_id)
        .order_by(Org.name, SsoLink.id)
    )
    return [
        LinkView(link.id, org, connection, link.subject, link.created_at, link.last_sign_in_at)
        for link, org, connection in db.execute(statement)
    ]


def unlink(db: Session, actor: Actor, user_id: int, link_id: int) -> Refused | None:
    """Remove one of the account's SSO identities and end the SSO authentications
    its connection gave; the next sign-in through it links afresh."""
    link = db.get(SsoLink, link_id)
    if link is None or link.user_id != user_id:
        error = NotFound("No such SSO identity.")
        return refuse(db, actor, "sso.unlink_refused", f"sso-link:{link_id}", error)
    connection = db.get_one(SsoConnection, link.connection_id)
    ended = db.execute(
        delete(SsoAuthentication).where(
            SsoAuthentication.user_id == user_id,
            SsoAuthentication.connection_id == link.connection_id,
        )
    )
    db.delete(link)
    audit.record(
        db, actor, "sso.unlinked", org_id=connection.org_id, target=f"user:{user_id}",
        data={"connection": connection.id, "subject": link.subject,
              "authentications_ended": int(getattr(ended, "rowcount", 0) or 0)},
    )  # fmt: skip
    return None


# -- an org admin -------------------------------------------------------------------


def end_member_sessions(
    db: Session, actor: Actor, principal: Principal, org: Org, who: int | str
) -> Refused | int:
    """End the member's (``who``: user id or email) sessions that hold an SSO
    authentication for ``org``; an account the org manages loses all its
    sessions. Admins only, asked before any lookup. Returns how many ended."""
    try:
        require(principal, Action.ADMIN, OrgTarget(org.id))
        user = _member(db, org, who)
    except HubgateError as exc:
        target = who if isinstance(who, str) else f"user:{who}"
        return refuse(db, actor, "member.sessions_end_refused", target, exc, org_id=org.id)
    doomed = select(WebSession.id).where(WebSession.user_id == user.id)
    if user.managed_by_org_id != org.id:
        holding = select(SsoAuthentication.session_id).where(
            SsoAuthentication.user_id == user.id, SsoAuthentication.org_id == org.id
        )
        doomed = doomed.where(WebSession.id.in_(holding))
    ids = list(db.scalars(doomed))
    db.execute(delete(SsoAuthentication).where(SsoAuthentication.session_id.in_(ids)))
    db.execute(delete(WebSession).where(WebSession.id.in_(ids)))
    audit.record(
        db, actor, "member.sessions_ended", org_id=org.id,
        target=user.emails[0].address if user.emails else f"user:{user.id}",
        data={"ended": len(ids)},
    )  # fmt: skip
    return len(ids)


def _member(db: Session, org: Org, who: int | str) -> User:
    if isinstance(who, int):
        user = db.get(User, who)
    else:
        try:
            user = users.find_by_email(db, normalize_email(who))
        except BadRequest:
            user = None
    member = select(Membership.id).where(Membership.org_id == org.id)
    if user is None or (
        db.scalar(member.where(Membership.user_id == user.id)) is None
        and user.managed_by_org_id != org.id
    ):
        raise NotFound("No such member.")
    return user
