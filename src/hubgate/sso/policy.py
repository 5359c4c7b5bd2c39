"""An org's SSO policy: mode, enforcement, session timeout, defaults for
newcomers, external collaborators, and connection activation (DESIGN.md §1).

Every function runs in the caller's transaction and never commits; every change
is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgRole, OrgTarget, Principal
from hubgate.accounts.emails import split_email
from hubgate.audit import Actor
from hubgate.db.models import (
    Membership,
    Org,
    OrgDomain,
    OrgSso,
    SsoAuthentication,
    SsoConnection,
    Team,
    User,
    WebSession,
)
from hubgate.errors import BadRequest, Conflict, Forbidden, HubgateError, NotFound
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sso.states import ConnectionState

__all__ = [
    "DEFAULT_TIMEOUT",
    "MIN_TIMEOUT",
    "password_refusal",
    "MAX_TIMEOUT",
    "Policy",
    "SsoMode",
    "activate",
    "deactivate",
    "describe",
    "end_org_sessions",
    "policy_of",
    "require_admin",
    "set_collaborator",
    "set_enforcement",
    "set_mode",
    "settings_row",
    "sso_enforced",
    "update_defaults",
]

MIN_TIMEOUT = timedelta(hours=1)
MAX_TIMEOUT = timedelta(days=90)
DEFAULT_TIMEOUT = timedelta(days=7)


class SsoMode(StrEnum):
    OFF = "off"
    BASIC = "basic"
    MANAGED = "managed"


# The CLI's and the API's spelling of (mode, optional).
MODE_NAMES = {
    "off": (SsoMode.OFF, False),
    "basic": (SsoMode.BASIC, False),
    "basic-optional": (SsoMode.BASIC, True),
    "managed": (SsoMode.MANAGED, False),
}


@dataclass(frozen=True, slots=True)
class Policy:
    """What sign-in and the access decision need of an org's SSO settings."""

    org_id: int
    mode: SsoMode = SsoMode.OFF
    optional: bool = False
    enforced: bool = True
    session_timeout: timedelta = DEFAULT_TIMEOUT
    default_role: OrgRole = OrgRole.WRITE
    default_team_id: int | None = None

    @property
    def name(self) -> str:
        if self.mode is SsoMode.BASIC and self.optional:
            return "basic-optional"
        return self.mode.value

    @property
    def password_refused(self) -> bool:
        """Managed and enforced: the org's people sign in through the IdP only."""
        return self.mode is SsoMode.MANAGED and self.enforced

    @property
    def binds_access(self) -> bool:
        """Whether private access needs a fresh SSO authentication for the org."""
        return self.mode is not SsoMode.OFF and not self.optional

    @classmethod
    def of_row(cls, row: OrgSso) -> Policy:
        return cls(
            org_id=row.org_id, mode=SsoMode(row.mode), optional=row.optional,
            enforced=row.enforced, session_timeout=timedelta(seconds=row.session_timeout_seconds),
            default_role=OrgRole.parse(row.default_role), default_team_id=row.default_team_id,
        )  # fmt: skip


def require_admin(principal: Principal, org: Org) -> None:
    require(principal, Action.ADMIN, OrgTarget(org.id))


def policy_of(db: Session, org_id: int) -> Policy:
    row = db.get(OrgSso, org_id)
    return Policy.of_row(row) if row is not None else Policy(org_id=org_id)


def settings_row(db: Session, org_id: int) -> OrgSso:
    """The org's settings row, created with the defaults when missing."""
    row = db.get(OrgSso, org_id)
    if row is None:
        row = OrgSso(
            org_id=org_id, mode="off", optional=False, enforced=True,
            session_timeout_seconds=int(DEFAULT_TIMEOUT.total_seconds()),
            default_role="write",
        )  # fmt: skip
        db.add(row)
        db.flush()
    return row


def _changed(db: Session, actor: Actor, org: Org, action: str, data: dict[str, Any]) -> None:
    audit.record(db, actor, action, org_id=org.id, target=org.name, data=data)


def set_mode(
    db: Session, rt: Runtime, actor: Actor, principal: Principal | None, org: Org, name: str
) -> Policy:
    """Switch the org's mode; SSO needs an active connection, managed mode also a
    verified domain (JIT accounts come only from verified domains). ``principal``
    is ``None`` for operators (the CLI)."""
    if principal is not None:
        require(principal, Action.ADMIN, OrgTarget(org.id))
    if name not in MODE_NAMES:
        raise BadRequest(f"Choose a mode among {', '.join(MODE_NAMES)}.", code="invalid_mode")
    mode, optional = MODE_NAMES[name]
    if mode is not SsoMode.OFF and not _has_active_connection(db, org.id):
        raise Conflict(
            "Activate a verified SSO connection before turning SSO on.", code="sso_not_configured"
        )
    if mode is SsoMode.MANAGED and not _has_verified_domain(db, org.id):
        raise Conflict("Managed mode needs a verified email domain.", code="domain_required")
    row = settings_row(db, org.id)
    old = Policy.of_row(row).name
    row.mode, row.optional, row.updated_at = mode.value, optional, rt.now()
    _changed(db, actor, org, "sso.settings_changed", {"mode": {"from": old, "to": name}})
    return Policy.of_row(row)


def set_enforcement(
    db: Session, rt: Runtime, actor: Actor, principal: Principal | None, org: Org, enforced: bool
) -> Policy:
    """Lift (``False``) or restore managed mode's enforcement; both audited."""
    if principal is not None:
        require(principal, Action.ADMIN, OrgTarget(org.id))
    row = settings_row(db, org.id)
    old, row.enforced, row.updated_at = row.enforced, enforced, rt.now()
    data = {"from": "on" if old else "off", "to": "on" if enforced else "off"}
    _changed(db, actor, org, "sso.enforcement_changed", data)
    return Policy.of_row(row)


def update_defaults(
    db: Session,
    rt: Runtime,
    actor: Actor,
    principal: Principal | None,
    org: Org,
    *,
    session_timeout: timedelta | None = None,
    default_role: OrgRole | None = None,
    default_team: str | None = None,
) -> Policy:
    """Session timeout (1 hour to 90 days), default role and default team."""
    if principal is not None:
        require(principal, Action.ADMIN, OrgTarget(org.id))
    row = settings_row(db, org.id)
    changes: dict[str, Any] = {}
    if session_timeout is not None:
        if not MIN_TIMEOUT <= session_timeout <= MAX_TIMEOUT:
            raise BadRequest(
                "The session timeout must be 1 hour to 90 days.", code="invalid_setting"
            )
        row.session_timeout_seconds = int(session_timeout.total_seconds())
        changes["session_timeout_seconds"] = row.session_timeout_seconds
    if default_role is not None:
        row.default_role = changes["default_role"] = default_role.label
    if default_team is not None:
        row.default_team_id = _team_id(db, org, default_team)
        changes["default_team"] = default_team
    row.updated_at = rt.now()
    _changed(db, actor, org, "sso.settings_changed", changes)
    return Policy.of_row(row)


def _team_id(db: Session, org: Org, name: str) -> int:
    found = db.scalar(select(Team.id).where(Team.org_id == org.id, Team.name == name[:64]))
    if found is None:
        raise NotFound("No team by that name.")
    return found


def _has_active_connection(db: Session, org_id: int) -> bool:
    statement = select(SsoConnection.id).where(
        SsoConnection.org_id == org_id, SsoConnection.state == ConnectionState.ACTIVE
    )
    return db.scalar(statement.limit(1)) is not None


def _has_verified_domain(db: Session, org_id: int) -> bool:
    statement = select(OrgDomain.id).where(
        OrgDomain.org_id == org_id, OrgDomain.verified_at.is_not(None)
    )
    return db.scalar(statement.limit(1)) is not None


def activate(
    db: Session,
    actor: Actor,
    principal: Principal | None,
    connection: SsoConnection,
    *,
    skip_test: bool = False,
) -> None:
    """``verified`` -> ``active``. Only operators (``principal`` None) may skip the
    test sign-in, and that is audited as such."""
    if principal is not None:
        require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    allowed = (
        {ConnectionState.VERIFIED, ConnectionState.INACTIVE}
        if connection.verified_at
        else {ConnectionState.VERIFIED}
    )
    if connection.state not in allowed and not (skip_test and principal is None):
        raise Conflict(
            "Run a successful test sign-in through this connection before activating it.",
            code="connection_unverified",
        )
    old, connection.state = connection.state, ConnectionState.ACTIVE.value
    audit.record(
        db, actor, "sso.connection_activated", org_id=connection.org_id,
        target=f"connection:{connection.id}", data={"from": old, "skip_test": skip_test},
    )  # fmt: skip


def deactivate(
    db: Session, actor: Actor, principal: Principal | None, connection: SsoConnection
) -> None:
    """Switch a connection off; the org must not be left with SSO on and no way in."""
    if principal is not None:
        require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    old, connection.state = connection.state, ConnectionState.INACTIVE.value
    db.flush()
    policy = policy_of(db, connection.org_id)
    if policy.mode is not SsoMode.OFF and not _has_active_connection(db, connection.org_id):
        raise Conflict(
            "This is the org's last active connection: turn SSO off first.", code="last_connection"
        )
    audit.record(
        db, actor, "sso.connection_deactivated", org_id=connection.org_id,
        target=f"connection:{connection.id}", data={"from": old},
    )  # fmt: skip


def set_collaborator(
    db: Session, actor: Actor, principal: Principal, org: Org, user: User, external: bool
) -> Membership:
    """Name a member outside the org's domains an external collaborator (no SSO
    needed, still bound by roles and teams), or take that back."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    member = db.scalars(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    ).first()
    if member is None:
        raise NotFound("That person is not a member of this organization.")
    if external and _in_org_domains(db, org.id, user):
        raise Conflict(
            "People with an email in the organization's domains sign in through SSO.",
            code="collaborator_in_domain",
        )
    member.external_collaborator = external
    audit.record(
        db, actor, "member.collaborator_set", org_id=org.id,
        target=user.emails[0].address if user.emails else f"user:{user.id}",
        data={"external": external},
    )  # fmt: skip
    return member


def _in_org_domains(db: Session, org_id: int, user: User) -> bool:
    domains = {split_email(e.address)[1] for e in user.emails}
    statement = select(OrgDomain.id).where(
        OrgDomain.org_id == org_id, OrgDomain.verified_at.is_not(None),
        OrgDomain.domain.in_(domains),
    )  # fmt: skip
    return db.scalar(statement.limit(1)) is not None


def end_org_sessions(
    db: Session, actor: Actor, principal: Principal | None, org: Org, user: User
) -> int:
    """End a member's SSO authentications for the org now; an account the org
    manages loses its sessions altogether. Returns how many were ended."""
    if principal is not None:
        require(principal, Action.ADMIN, OrgTarget(org.id))
    ended = db.execute(
        delete(SsoAuthentication).where(
            SsoAuthentication.user_id == user.id, SsoAuthentication.org_id == org.id
        )
    )
    count = int(getattr(ended, "rowcount", 0) or 0)
    if user.managed_by_org_id == org.id:
        gone = db.execute(delete(WebSession).where(WebSession.user_id == user.id))
        count += int(getattr(gone, "rowcount", 0) or 0)
    audit.record(
        db, actor, "member.sessions_ended", org_id=org.id,
        target=user.emails[0].address if user.emails else f"user:{user.id}",
        data={"ended": count},
    )  # fmt: skip
    return count


def describe(db: Session, org: Org) -> dict[str, Any]:
    policy = policy_of(db, org.id)
    team = db.get(Team, policy.default_team_id) if policy.default_team_id else None
    return {
        "mode": policy.name,
        "enforced": policy.enforced,
        "session_timeout_seconds": int(policy.session_timeout.total_seconds()),
        "default_role": policy.default_role.label,
        "default_team": team.name if team else None,
    }


def password_refusal(db: Session, address: str, user: User) -> HubgateError | None:
    """Why ``user`` may not sign in with a password, if so (see :func:`sso_enforced`).
    Asked after the password checked out, so it tells nothing to someone who does
    not know it."""
    return sso_enforced(db, address, user)


def sso_enforced(db: Session, address: str, user: User | None) -> Forbidden | None:
    """An org in managed mode (enforced) that signs this person in through its IdP:
    it owns the email's domain, counts ``user`` as a member (external
    collaborators excepted) or manages the account. With ``user`` ``None`` only
    the domain counts (nothing about any account is asked)."""
    domain = split_email(address)[1]
    by_domain = select(OrgDomain.org_id).where(
        OrgDomain.domain == domain, OrgDomain.verified_at.is_not(None)
    )
    orgs = by_domain if user is None else by_domain.union(*_orgs_of_account(user))
    statement = (
        select(Org.name, Org.display_name)
        .join(OrgSso, OrgSso.org_id == Org.id)
        .where(
            OrgSso.mode == SsoMode.MANAGED.value,
            OrgSso.enforced.is_(True),
            Org.id.in_(orgs),
        )  # fmt: skip
        .order_by(Org.name)
    )
    found = db.execute(statement.limit(1)).first()
    if found is None:
        return None
    return Forbidden(
        f"{found.display_name} signs you in through its identity provider: use single sign-on.",
        code="sso_enforced", sso_url=f"/sso/{found.name}/start",
    )  # fmt: skip


def _orgs_of_account(user: User) -> tuple[Select[int], Select[int]]:
    """The orgs that count ``user`` as one of theirs: a membership (external
    collaborators excepted) or ownership of the account."""
    by_membership = select(Membership.org_id).where(
        Membership.user_id == user.id, Membership.external_collaborator.is_(False),
        Membership.deactivated_at.is_(None),
    )  # fmt: skip
    return by_membership, select(Org.id).where(Org.id == user.managed_by_org_id)
