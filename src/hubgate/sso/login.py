"""Identity -> membership + an SSO authentication + a session (DESIGN.md §2).

The one place a verified sign-in becomes access. The protocol adapters hand over
an :class:`~hubgate.sso.identity.Identity`; :func:`complete` finds or links the
account (by (connection, subject), never by email alone after the first link),
creates it just in time in managed mode, admits the person into the org
(managed mode, an invitation or the join link), recomputes the mapped role and
teams, and opens a session holding the org's SSO authentication. A refusal
raises an :class:`~hubgate.sso.errors.SsoRefused` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from hubgate import audit
from hubgate.access import OrgRole
from hubgate.accounts import sessions, users
from hubgate.accounts.emails import split_email
from hubgate.audit import Actor
from hubgate.db.models import (
    Email,
    Invitation,
    Membership,
    Org,
    OrgSso,
    SsoAuthentication,
    SsoConnection,
    SsoLink,
    User,
)
from hubgate.errors import BadRequest, Conflict
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import domains, errors, invitations, mappings, started
from hubgate.sso.identity import Identity
from hubgate.sso.policy import Policy, SsoMode
from hubgate.sso.started import Browser

__all__ = ["SignedIn", "complete", "sign_in"]

_RACE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: int
    org: str
    cookie: str
    created: bool
    linked: bool


class _Raced(Exception):
    """Another instance created the same account or link first: run again."""


def complete(
    rt: Runtime,
    actor: Actor,
    connection: SsoConnection,
    identity: Identity,
    browser_key: str,
    *,
    user_agent: str | None = None,
) -> SignedIn:
    """What the browser started (:func:`recall`), then :func:`sign_in`, in one
    transaction; a lost race for a unique row (twenty first sign-ins of one person
    at once) runs again and finds the winner's rows."""
    for attempt in range(_RACE_RETRIES):
        try:
            with rt.db.transaction() as db:
                browser = started.recall(
                    db, browser_key, connection.org_id, rt.now(),
                    client_address=actor.client_address, user_agent=user_agent,
                )  # fmt: skip
                return sign_in(db, rt, actor, connection.id, identity, browser)
        except (_Raced, IntegrityError):
            if attempt == _RACE_RETRIES - 1:
                raise Conflict("Too many sign-ins at once; try again.", code="sso_busy") from None
    raise AssertionError("unreachable")


def sign_in(
    db: Session,
    rt: Runtime,
    actor: Actor,
    connection_id: int,
    identity: Identity,
    browser: Browser,
) -> SignedIn:
    connection, org, policy = _connection_org_policy(db, connection_id)
    domain = _email_domain(identity)
    _check_domain_owner(db, org, connection, domain)
    user, linked, created = _account(db, rt, actor, connection, identity, policy, browser)
    member = _admit(db, actor, org, policy, user, identity, browser)
    _apply_mappings(db, actor, org, member, identity, policy)
    cookie, session_id = _session(db, rt, user, org.id, browser, end_others=linked)
    _record_authentication(db, rt, connection, session_id, user, identity)
    audit.record(
        db, actor, "sso.login", org_id=org.id, target=_who(user),
        data={"connection": connection.id, "created": created, "linked": linked},
    )  # fmt: skip
    return SignedIn(user.id, org.name, cookie, created, linked)


def _connection_org_policy(db: Session, connection_id: int) -> tuple[SsoConnection, Org, Policy]:
    """The active connection, its org and the org's policy, in one query."""
    row = db.execute(
        select(SsoConnection, Org, OrgSso)
        .join(Org, Org.id == SsoConnection.org_id)
        .outerjoin(OrgSso, OrgSso.org_id == Org.id)
        .where(SsoConnection.id == connection_id)
    ).first()
    if row is None or row.SsoConnection.state != "active":
        raise errors.ConnectionInactive()
    settings = row.OrgSso
    policy = Policy.of_row(settings) if settings is not None else Policy(org_id=row.Org.id)
    return row.SsoConnection, row.Org, policy


# -- the email and its domain ---------------------------------------------------


def _email_domain(identity: Identity) -> str | None:
    if identity.email is None:
        return None
    try:
        return split_email(identity.email)[1]
    except BadRequest as exc:
        raise errors.DomainMismatch("The identity provider sent a malformed email.") from exc


def _check_domain_owner(
    db: Session, org: Org, connection: SsoConnection, domain: str | None
) -> None:
    """An org's IdP never signs in an address of another org's verified domain."""
    if domain is None:
        return
    owner = domains.verified_owner(db, domain)
    if owner is not None and owner.org_id != org.id:
        raise errors.DomainMismatch()


def _email_admissible(db: Session, org: Org, connection: SsoConnection, identity: Identity) -> str:
    """The normalized email, when it may link or create an account: in one of this
    org's verified domains (that this connection may serve), vouched for by the IdP."""
    if identity.email is None:
        raise errors.EmailMissing()
    local, domain = split_email(identity.email)
    owner = domains.verified_owner(db, domain)
    if owner is None or owner.org_id != org.id:
        raise errors.DomainMismatch()
    if owner.connection_id is not None and owner.connection_id != connection.id:
        raise errors.DomainMismatch(
            "Another of this organization's connections serves that domain."
        )
    # A SAML IdP speaks for the org's verified domains; OIDC says so per email.
    if connection.kind == "oidc" and not identity.email_verified:
        raise errors.EmailUnverified()
    return f"{local}@{domain}"


# -- the account ------------------------------------------------------------------


def _account(
    db: Session,
    rt: Runtime,
    actor: Actor,
    connection: SsoConnection,
    identity: Identity,
    policy: Policy,
    browser: Browser,
) -> tuple[User, bool, bool]:
    """(user, linked now, created now)."""
    if len(identity.subject) > 1024:
        raise errors.SsoRefused("The identity provider's subject is too long.")
    linked_id = db.scalar(
        update(SsoLink)
        .where(SsoLink.connection_id == connection.id, SsoLink.subject == identity.subject)
        .values(last_sign_in_at=rt.now())
        .returning(SsoLink.user_id)
    )
    if linked_id is not None:
        if browser.user_id is not None and browser.user_id != linked_id:
            raise errors.AccountMismatch()
        user = (
            db.scalars(select(User).options(joinedload(User.emails)).where(User.id == linked_id))
            .unique()
            .one()
        )
        return user, False, False
    email = _email_admissible(db, db.get_one(Org, connection.org_id), connection, identity)
    existing = users.find_by_email(db, email)
    if existing is not None:
        _check_linkable(existing, email, browser)
        _link(db, actor, connection, identity, existing)
        return existing, True, False
    if browser.user_id is not None:
        raise errors.EmailNotOnAccount()
    if policy.mode is not SsoMode.MANAGED:
        raise errors.AccountRequired()
    user = _create(db, rt, actor, connection, identity, email)
    _link(db, actor, connection, identity, user)
    return user, False, True


def _check_linkable(user: User, email: str, browser: Browser) -> None:
    if browser.user_id is not None and browser.user_id != user.id:
        raise errors.AccountMismatch()
    row = next(e for e in user.emails if e.address == email)
    if row.verified_at is None:
        raise errors.AccountEmailUnverified()


def _link(
    db: Session, actor: Actor, connection: SsoConnection, identity: Identity, user: User
) -> None:
    db.add(SsoLink(connection_id=connection.id, subject=identity.subject, user_id=user.id))
    try:
        db.flush()
    except IntegrityError as exc:
        raise _Raced() from exc
    audit.record(
        db, actor, "sso.linked", org_id=connection.org_id, target=_who(user),
        data={"connection": connection.id, "subject": identity.subject},
    )  # fmt: skip


def _create(
    db: Session,
    rt: Runtime,
    actor: Actor,
    connection: SsoConnection,
    identity: Identity,
    email: str,
) -> User:
    """A just-in-time account, owned by the org, with the IdP-vouched email verified."""
    try:
        user = users.create_user(
            db, rt, email, password=None, display_name=identity.display_name, verified=True
        )
    except (Conflict, IntegrityError) as exc:
        raise _Raced() from exc
    user.managed_by_org_id = connection.org_id
    audit.record(
        db, actor, "sso.jit_created", org_id=connection.org_id, target=email,
        data={"connection": connection.id},
    )  # fmt: skip
    return user


# -- membership, roles and teams ---------------------------------------------------


def _admit(
    db: Session,
    actor: Actor,
    org: Org,
    policy: Policy,
    user: User,
    identity: Identity,
    browser: Browser,
) -> Membership:
    """The person's membership, made now when managed mode, an invitation (which
    is then spent) or the join link admits them."""
    member = service.membership(db, org.id, user.id)
    if member is not None:
        if member.deactivated_at is not None:
            raise errors.UserDeprovisioned()
        return member
    invitation = _invitation(db, org, user)
    joining = browser.join_org_id == org.id
    if policy.mode is not SsoMode.MANAGED and invitation is None and not joining:
        raise errors.NotInvited()
    member = _join(db, org, policy, user, invitation)
    action = "sso.join" if joining and invitation is None else "member.added"
    audit.record(
        db, actor, action, org_id=org.id, target=_who(user),
        data={"role": member.role, "via": _via(policy, invitation, joining)},
    )  # fmt: skip
    if invitation is not None:
        invitations.accept(db, actor, org, invitation, user)
    return member


def _invitation(db: Session, org: Org, user: User) -> Invitation | None:
    addresses = [e.address for e in user.emails if e.verified_at is not None]
    return invitations.pending_for(db, org.id, addresses)


def _via(policy: Policy, invitation: Invitation | None, joining: bool) -> str:
    if invitation is not None:
        return "invitation"
    return "join_link" if joining else "jit"


def _join(
    db: Session, org: Org, policy: Policy, user: User, invitation: Invitation | None
) -> Membership:
    role = OrgRole.parse(invitation.role) if invitation else policy.default_role
    source = "invitation" if invitation else "default"
    member = service.join(
        db, org.id, user.id, role, role_source=source, team_id=policy.default_team_id
    )
    member.invited_role = invitation.role if invitation else None
    return member


def _apply_mappings(
    db: Session, actor: Actor, org: Org, member: Membership, identity: Identity, policy: Policy
) -> None:
    roles, teams = mappings.load_rules(db, org.id)
    grants = mappings.grants_for(identity, roles, teams)
    mappings.apply_role(db, actor, org.id, member, grants.role, policy.default_role)
    added, removed = mappings.sync_teams(db, org.id, member.user_id, grants.teams)
    if added or removed:
        audit.record(
            db, actor, "team.mapped", org_id=org.id, target=f"user:{member.user_id}",
            data={"added": added, "removed": removed},
        )  # fmt: skip


# -- the session and its SSO authentication ------------------------------------------


def _session(
    db: Session, rt: Runtime, user: User, org_id: int, browser: Browser, *, end_others: bool
) -> tuple[str, int]:
    """A new session (rotated at every sign-in); the SSO authentications the old
    one held for other orgs move over. A first link ends the account's other sessions."""
    cookie, row = sessions.start(
        db, user.id, rt.lifetimes, rt.now(), client_address=browser.client_address,
        user_agent=browser.user_agent,
    )  # fmt: skip
    if browser.session_id is not None:
        db.execute(
            update(SsoAuthentication)
            .where(
                SsoAuthentication.session_id == browser.session_id,
                SsoAuthentication.user_id == user.id,
                SsoAuthentication.org_id != org_id,
            )
            .values(session_id=row.id)
        )
        sessions.end_by_id(db, browser.session_id)
    if end_others:
        sessions.end_all(db, user.id, keep=row.id)
    return cookie, row.id


def _record_authentication(
    db: Session,
    rt: Runtime,
    connection: SsoConnection,
    session_id: int,
    user: User,
    identity: Identity,
) -> None:
    """Freshness counts from this sign-in; the IdP's own session expiry, if it gave
    one, ends the authentication sooner."""
    db.add(
        SsoAuthentication(
            session_id=session_id,
            user_id=user.id,
            org_id=connection.org_id,
            connection_id=connection.id,
            authenticated_at=rt.now(),
            idp_expires_at=identity.session_expires_at,
        )  # fmt: skip
    )


def _who(user: User) -> str:
    emails: list[Email] = list(user.emails)
    return emails[0].address if emails else f"user:{user.id}"
