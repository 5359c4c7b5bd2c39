"""Identity -> membership + an SSO authentication + a session (DESIGN.md §2).

The one place a verified sign-in becomes access. The protocol adapters hand over
an :class:`~hubgate.sso.identity.Identity` (:mod:`hubgate.sso.flows.signin` runs them);
:func:`sign_in`, in a transaction of its own, finds or links the
account (by (connection, subject), never by email alone after the first link),
creates it just in time in managed mode, admits the person into the org
(managed mode, an invitation or the join link), recomputes the mapped role and
teams, and opens a session holding the org's SSO authentication. A refusal
raises an :class:`~hubgate.sso.errors.SsoRefused` and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import OrgRole
from hubgate.accounts import sessions, users
from hubgate.accounts.emails import split_email
from hubgate.audit import Actor
from hubgate.db.engine import core
from hubgate.db.models import (
    Email,
    Invitation,
    Membership,
    Org,
    OrgDomain,
    OrgSso,
    SsoAuthentication,
    SsoConnection,
    SsoLink,
    Token,
    User,
)
from hubgate.errors import BadRequest, Conflict
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import errors, invitations, mappings
from hubgate.sso.identity import Browser, Identity, IdpSession
from hubgate.sso.policy import Policy, SsoMode
from hubgate.sso.states import ConnectionKind, ConnectionState

__all__ = [
    "RACES",
    "Place",
    "Raced",
    "SignedIn",
    "admissible_email",
    "admission",
    "domain_refusal",
    "jit_refusal",
    "sign_in",
]


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: int
    org: str
    cookie: str
    created: bool
    linked: bool
    review: bool = False
    """A first link of an account that other identities, addresses or tokens reach."""


class Raced(Exception):
    """Another instance created the same account or link first: run again."""


RACES = (Raced, IntegrityError)
"""What :func:`sign_in` raises when it lost such a race; its transaction must roll back
and the sign-in run again (:mod:`hubgate.sso.flows.signin`)."""


def sign_in(
    db: Session,
    rt: Runtime,
    actor: Actor,
    connection_id: int,
    identity: Identity,
    browser: Browser,
    *,
    before_writes: Callable[[], None] | None = None,
) -> SignedIn:
    """``before_writes`` runs once, before the sign-in's first write (and its first
    audit record), after the reads that decide it; none when it refuses first."""
    if len(identity.subject) > 1024:
        raise errors.SsoRefused("The identity provider's subject is too long.")
    here = _place(db, connection_id, identity.subject, _email_domain(identity))
    refused = domain_refusal(here)
    if refused is not None:
        raise refused
    writing = _Writing(before_writes)
    user_id, linked, created, found = _account(db, rt, actor, here, identity, browser, writing)
    member, who = _admit(db, actor, here, user_id, found, browser, writing)
    # From here the person is known: the audit names them as the one acting.
    actor = dataclasses.replace(actor, label=who, user_id=user_id)
    named = _named(rt, identity.idp_session)  # sealing the id_token: before the lock
    _apply_mappings(db, actor, here, member, identity, writing)
    # The writes come last: on SQLite the write lock is held from the first one.
    writing()
    core(db).execute(
        _TOUCH_LINK,
        {"b_connection_id": here.connection_id, "b_subject": identity.subject, "b_now": rt.now()},
    )
    cookie, session_id = _session(db, rt, user_id, here.org_id, browser, end_others=linked)
    review = linked and _review_first_link(db, rt, here, user_id)
    core(db).execute(
        _AUTHENTICATED,
        {
            "session_id": session_id, "user_id": user_id, "org_id": here.org_id,
            "connection_id": here.connection_id, "authenticated_at": rt.now(),
            "idp_expires_at": identity.session_expires_at, **named,
        },
    )  # fmt: skip
    audit.record(
        db, actor, "sso.login", org_id=here.org_id, target=who,
        data={"connection": here.connection_id, "created": created, "linked": linked},
    )  # fmt: skip
    return SignedIn(user_id, here.org_name, cookie, created, linked, review)


class _Writing:
    """Called before each step that may write: runs ``first`` the first time only.
    On SQLite the write lock is held from a transaction's first write to its end,
    so a repeat sign-in reads what decides it (its place, its mappings) before
    the caller's first write (the ``sso.identity_verified`` record) takes it."""

    __slots__ = ("_first",)

    def __init__(self, first: Callable[[], None] | None) -> None:
        self._first = first

    def __call__(self) -> None:
        first, self._first = self._first, None
        if first is not None:
            first()


@dataclass(frozen=True, slots=True)
class Place:
    """The active connection, its org and the org's policy, which org (and
    connection) verified the email's domain, and the account already linked to the
    subject with its membership: one query, the one every sign-in reads."""

    connection_id: int
    kind: str
    org_id: int
    org_name: str
    policy: Policy
    owner_org_id: int | None
    owner_connection_id: int | None
    linked: _MemberRow | None


_C, _O, _S, _D = (t.__table__ for t in (SsoConnection, Org, OrgSso, OrgDomain))
_M, _E, _U, _L = (t.__table__ for t in (Membership, Email, User, SsoLink))
_FIRST_EMAIL = (
    select(_E.c.address).where(_E.c.user_id == _U.c.id).order_by(_E.c.id).limit(1)
).scalar_subquery()
_MEMBER_COLUMNS = (
    _U.c.id.label("user_id"), _M.c.id, _M.c.role, _M.c.role_source, _M.c.invited_role,
    _M.c.deactivated_at, _FIRST_EMAIL.label("who"), _M.c.role_detail, _M.c.role_pinned,
)  # fmt: skip
_MemberRow = Row[*tuple[Any, ...]]
_PLACE = (
    select(
        _C.c.kind,
        _C.c.state,
        _C.c.org_id,
        _O.c.name,
        _S.c.mode,
        _S.c.optional,
        _S.c.enforced,
        _S.c.session_timeout_seconds,
        _S.c.default_role,
        _S.c.default_team_id,
        _D.c.org_id.label("owner_org_id"),
        _D.c.connection_id.label("owner_connection_id"),
        *_MEMBER_COLUMNS,
    )
    .select_from(
        _C.join(_O, _O.c.id == _C.c.org_id)
        .outerjoin(_S, _S.c.org_id == _C.c.org_id)
        .outerjoin(_D, and_(_D.c.domain == bindparam("domain"), _D.c.verified_at.is_not(None)))
        # The account linked to (connection, subject), and its membership of the org.
        .outerjoin(_L, and_(_L.c.connection_id == _C.c.id, _L.c.subject == bindparam("subject")))
        .outerjoin(_U, _U.c.id == _L.c.user_id)
        .outerjoin(_M, and_(_M.c.user_id == _U.c.id, _M.c.org_id == _C.c.org_id))
    )
    .where(_C.c.id == bindparam("connection_id"))
)


def _place(db: Session, connection_id: int, subject: str, domain: str | None) -> Place:
    row = (
        core(db)
        .execute(_PLACE, {"connection_id": connection_id, "subject": subject, "domain": domain})
        .first()
    )
    if row is None or row.state != ConnectionState.ACTIVE:
        raise errors.ConnectionInactive()
    policy = (
        Policy(
            org_id=row.org_id,
            mode=SsoMode(row.mode),
            optional=row.optional,
            enforced=row.enforced,
            session_timeout=timedelta(seconds=row.session_timeout_seconds),
            default_role=OrgRole.parse(row.default_role),
            default_team_id=row.default_team_id,
        )  # fmt: skip
        if row.mode is not None
        else Policy(org_id=row.org_id)
    )
    return Place(
        connection_id, row.kind, row.org_id, row.name, policy,
        row.owner_org_id, row.owner_connection_id, row if row.user_id is not None else None,
    )  # fmt: skip


# -- the email and its domain ---------------------------------------------------


def _email_domain(identity: Identity) -> str | None:
    if identity.email is None:
        return None
    try:
        return split_email(identity.email)[1]
    except BadRequest as exc:
        raise errors.DomainMismatch("The identity provider sent a malformed email.") from exc


def domain_refusal(here: Place) -> errors.SsoRefused | None:
    """Pure: an org's IdP never signs in an address of another org's verified
    domain, whoever the account is."""
    if here.owner_org_id is not None and here.owner_org_id != here.org_id:
        return errors.DomainMismatch()
    return None


def admissible_email(here: Place, identity: Identity) -> str:
    """Pure: the normalized email, when it may link or create an account: in one
    of this org's verified domains (that this connection may serve), vouched for
    by the IdP; else the refusal that applies is raised."""
    if identity.email is None:
        raise errors.EmailMissing()
    local, domain = split_email(identity.email)
    if here.owner_org_id != here.org_id:
        raise errors.DomainMismatch()
    if here.owner_connection_id is not None and here.owner_connection_id != here.connection_id:
        raise errors.DomainMismatch(
            "Another of this organization's connections serves that domain."
        )
    # A SAML IdP speaks for the org's verified domains; OIDC says so per email.
    if here.kind == ConnectionKind.OIDC and not identity.email_verified:
        raise errors.EmailUnverified()
    return f"{local}@{domain}"


# -- the account ------------------------------------------------------------------

_TOUCH_LINK = (
    update(SsoLink)
    .where(
        SsoLink.connection_id == bindparam("b_connection_id"),
        SsoLink.subject == bindparam("b_subject"),
    )
    .values(last_sign_in_at=bindparam("b_now"))
)
# An account's membership of the org.
_MEMBER = (
    select(*_MEMBER_COLUMNS)
    .select_from(
        _U.outerjoin(_M, and_(_M.c.user_id == _U.c.id, _M.c.org_id == bindparam("org_id")))
    )
    .where(_U.c.id == bindparam("user_id"))
)


def _account(
    db: Session,
    rt: Runtime,
    actor: Actor,
    here: Place,
    identity: Identity,
    browser: Browser,
    writing: _Writing,
) -> tuple[int, bool, bool, _MemberRow | None]:
    """(user id, linked now, created now, the account's membership row when it was
    linked before)."""
    found = here.linked
    if found is not None:
        if browser.user_id is not None and browser.user_id != found.user_id:
            raise errors.AccountMismatch()
        return int(found.user_id), False, False, found
    email = admissible_email(here, identity)
    existing = users.find_verified(db, email)
    if existing is not None:
        if browser.user_id is not None and browser.user_id != existing.id:
            raise errors.AccountMismatch()
        writing()
        _link(db, actor, here, identity, existing)
        return existing.id, True, False, None
    # No account has verified the address: whoever holds it unverified holds nothing.
    _check_unclaimed(db, here, email, browser)
    writing()
    users.release_unverified(db, actor, email, "sso")
    user = _create(db, rt, actor, here, identity, email)
    _link(db, actor, here, identity, user)
    return user.id, False, True, None


def _check_unclaimed(db: Session, here: Place, email: str, browser: Browser) -> None:
    holder = users.find_by_email(db, email)
    refused = jit_refusal(here.policy.mode, browser.user_id, holder.id if holder else None)
    if refused is not None:
        raise refused


def jit_refusal(
    mode: SsoMode, browser_user_id: int | None, holder_id: int | None
) -> errors.SsoRefused | None:
    """Pure: whether an account may be made just in time for an address no account
    has verified (``holder_id``: the account holding it unverified, if any), asked
    from a browser signed in to ``browser_user_id`` (or none). Only managed mode
    makes accounts, and never while the browser is signed in to another account;
    an unverified holder (even the browser's own account) never blocks it."""
    own = holder_id is not None and browser_user_id == holder_id
    if mode is SsoMode.MANAGED and (browser_user_id is None or own):
        return None
    if own:
        return errors.AccountEmailUnverified()
    if browser_user_id is not None:
        return errors.EmailNotOnAccount()
    return errors.AccountRequired()


def _review_first_link(db: Session, rt: Runtime, here: Place, user_id: int) -> bool:
    """A first link of an existing account: mail its verified addresses what else
    can sign in to it or act as it (the IdP vouched for none of it), each revocable
    on the account's security page; whether there is anything to review."""
    user = db.get_one(User, user_id)
    others = [
        f"- single sign-on of {org} (connection {connection})"
        for connection, org in db.execute(
            select(SsoConnection.name, Org.name)
            .join(SsoLink, SsoLink.connection_id == SsoConnection.id)
            .join(Org, Org.id == SsoConnection.org_id)
            .where(SsoLink.user_id == user_id, SsoLink.connection_id != here.connection_id)
        )
    ]
    others += [f"- address {e.address}" for e in user.emails[1:]]
    others += [
        f"- access token {name} ({hint}...)"
        for name, hint in db.execute(
            select(Token.name, Token.hint).where(
                Token.user_id == user_id,
                Token.revoked_at.is_(None),
                or_(Token.expires_at.is_(None), Token.expires_at > rt.now()),
            )  # fmt: skip
        )
    ]
    listed = "\n".join(others) or "- nothing else"
    body = (
        f"Your hubgate account was just linked to the single sign-on of {here.org_name}; "
        "every other session of the account was ended.\n\n"
        f"Also able to sign in to or act as this account:\n{listed}\n\n"
        "Revoke anything you do not recognise on your account's security page:\n\n"
        f"{rt.url('/account/security')}\n"
    )
    subject = f"Your account was linked to {here.org_name}"
    for email in user.emails:
        if email.verified_at is not None:
            rt.mailer.send(db, email.address, subject, body)
    return bool(others)


def _link(db: Session, actor: Actor, here: Place, identity: Identity, user: User) -> None:
    db.add(SsoLink(connection_id=here.connection_id, subject=identity.subject, user_id=user.id))
    try:
        db.flush()
    except IntegrityError as exc:
        raise Raced() from exc
    audit.record(
        db, actor, "sso.linked", org_id=here.org_id, target=_who(user),
        data={"connection": here.connection_id, "subject": identity.subject},
    )  # fmt: skip


def _create(
    db: Session, rt: Runtime, actor: Actor, here: Place, identity: Identity, email: str
) -> User:
    """A just-in-time account, owned by the org, with the IdP-vouched email verified."""
    try:
        user = users.create_user(
            db, rt, email, password=None, display_name=identity.display_name, verified=True
        )
    except (Conflict, IntegrityError) as exc:
        raise Raced() from exc
    user.managed_by_org_id = here.org_id
    audit.record(
        db, actor, "sso.jit_created", org_id=here.org_id, target=email,
        data={"connection": here.connection_id},
    )  # fmt: skip
    return user


# -- membership, roles and teams ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Member:
    id: int
    user_id: int
    role: str
    role_source: str
    invited_role: str | None
    role_detail: str | None = None
    role_pinned: bool = False


def _admit(
    db: Session,
    actor: Actor,
    here: Place,
    user_id: int,
    found: _MemberRow | None,
    browser: Browser,
    writing: _Writing,
) -> tuple[_Member, str]:
    """The person's membership (and how the audit names them), made now when
    managed mode, an invitation (which is then spent) or the join link admits them."""
    row = found or core(db).execute(_MEMBER, {"org_id": here.org_id, "user_id": user_id}).one()
    who = row.who or f"user:{user_id}"
    if row.id is not None:
        if row.deactivated_at is not None:
            raise errors.UserDeprovisioned()
        return _Member(
            row.id, user_id, row.role, row.role_source, row.invited_role, row.role_detail,
            bool(row.role_pinned),
        ), who  # fmt: skip
    user, org, policy = db.get_one(User, user_id), db.get_one(Org, here.org_id), here.policy
    invitation = _invitation(db, org, user)
    joining = browser.join_org_id == org.id
    via = admission(policy.mode, invited=invitation is not None, joining=joining)
    writing()
    member = _join(db, org, policy, user, invitation)
    action = "sso.join" if via == "join_link" else "member.added"
    audit.record(
        db, actor, action, org_id=org.id, target=who, data={"role": member.role, "via": via}
    )  # fmt: skip
    if invitation is not None:
        invitations.accept(db, actor, org, invitation, user)
    joined = _Member(
        member.id, user_id, member.role, member.role_source, member.invited_role,
        member.role_detail,
    )  # fmt: skip
    return joined, who


def _invitation(db: Session, org: Org, user: User) -> Invitation | None:
    addresses = [e.address for e in user.emails if e.verified_at is not None]
    return invitations.pending_for(db, org.id, addresses)


def admission(mode: SsoMode, *, invited: bool, joining: bool) -> str:
    """Pure: how a person who is no member yet becomes one at an SSO sign-in (the
    audit's ``via``): a pending invitation first, then the org's join link, else
    just in time in managed mode; otherwise :class:`~errors.NotInvited`."""
    if invited:
        return "invitation"
    if joining:
        return "join_link"
    if mode is SsoMode.MANAGED:
        return "jit"
    raise errors.NotInvited()


def _join(
    db: Session, org: Org, policy: Policy, user: User, invitation: Invitation | None
) -> Membership:
    role = OrgRole.parse(invitation.role) if invitation else policy.default_role
    source = "invitation" if invitation else "default"
    member = service.join(
        db, org.id, user.id, role, role_source=source, team_id=policy.default_team_id,
        role_detail=invitation.invited_by[:256] if invitation else None,
    )  # fmt: skip
    member.invited_role = invitation.role if invitation else None
    return member


def _apply_mappings(
    db: Session, actor: Actor, here: Place, member: _Member, identity: Identity,
    writing: _Writing,
) -> None:  # fmt: skip
    """Role and teams as the mappings say; the membership row is loaded only when
    its role changes. When neither changes, nothing is written here (nor the write
    lock taken)."""
    roles, teams, places = mappings.rules_and_places(db, here.org_id, member.user_id)
    grants = mappings.grants_for(identity, roles, teams)
    default_role = here.policy.default_role
    settled = mappings.role_settled(member, grants.role, default_role, detail=grants.detail)
    if settled and not any(mappings.team_changes(places, grants.teams, "mapping")):
        return
    writing()
    if not settled:
        row = db.get_one(Membership, member.id)
        mappings.apply_role(
            db, actor, here.org_id, row, grants.role, default_role, detail=grants.detail
        )
    added, removed = mappings.sync_teams(
        db, here.org_id, member.user_id, grants.teams, places=places
    )
    if added or removed:
        audit.record(
            db, actor, "team.mapped", org_id=here.org_id, target=f"user:{member.user_id}",
            data={"added": added, "removed": removed},
        )  # fmt: skip


# -- the session and its SSO authentication ------------------------------------------


def _session(
    db: Session, rt: Runtime, user_id: int, org_id: int, browser: Browser, *, end_others: bool
) -> tuple[str, int]:
    """A new session (rotated at every sign-in); the SSO authentications the old
    one held for other orgs move over. A first link ends the account's other sessions."""
    cookie, session_id = sessions.start(
        db, user_id, rt.lifetimes, rt.now(), client_address=browser.client_address,
        user_agent=browser.user_agent,
    )  # fmt: skip
    if browser.session_id is not None:
        db.execute(
            update(SsoAuthentication)
            .where(
                SsoAuthentication.session_id == browser.session_id,
                SsoAuthentication.user_id == user_id,
                SsoAuthentication.org_id != org_id,
            )
            .values(session_id=session_id)
        )
        sessions.end_by_id(db, browser.session_id)
    if end_others:
        sessions.end_all(db, user_id, keep=session_id)
    return cookie, session_id


# Freshness counts from this sign-in; the IdP's own session expiry, if it gave one,
# ends the authentication sooner.
_AUTHENTICATED = insert(SsoAuthentication).inline()  # no RETURNING of the unread id


def _named(rt: Runtime, named: IdpSession | None) -> dict[str, str | None]:
    """The columns that let a logout name this authentication later."""
    if named is None:
        return dict.fromkeys(_NAMED_COLUMNS)
    return {
        "idp_subject": named.subject, "idp_subject_format": named.subject_format,
        "idp_name_qualifier": named.name_qualifier,
        "idp_sp_name_qualifier": named.sp_name_qualifier, "idp_session": named.session,
        "id_token": rt.sealer.seal(named.id_token) if named.id_token else None,
    }  # fmt: skip


_NAMED_COLUMNS = (
    "idp_subject", "idp_subject_format", "idp_name_qualifier", "idp_sp_name_qualifier",
    "idp_session", "id_token",
)  # fmt: skip


def _who(user: User) -> str:
    emails: list[Email] = list(user.emails)
    return emails[0].address if emails else f"user:{user.id}"
