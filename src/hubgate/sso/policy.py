"""An org's SSO policy settings (DESIGN.md §1): mode, enforcement, session
timeout and defaults for newcomers, and the pure rules over them (what a mode
needs, when a connection may become active or be switched off).

Applying the rules elsewhere: :mod:`hubgate.sso.activation` (a connection's
states), :mod:`hubgate.sso.members` (external collaborators, ending a member's
SSO sessions), :mod:`hubgate.sso.enforcement` (whose sign-in managed mode takes).
Every function runs in the caller's transaction and never commits; every change
is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgRole, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import Org, OrgDomain, OrgSso, SsoConnection, Team
from hubgate.errors import BadRequest, Conflict, HubgateError, NotFound
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sso.states import ConnectionState

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "MIN_TIMEOUT",
    "MODE_NAMES",
    "Policy",
    "SsoMode",
    "describe",
    "has_active_connection",
    "leaves_no_way_in",
    "may_activate",
    "mode_refusal",
    "parse_mode",
    "policy_of",
    "require_admin",
    "set_enforcement",
    "set_mode",
    "settings_row",
    "timeout_refusal",
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
    db: Session, rt: Runtime, actor: Actor, principal: Principal, org: Org, name: str
) -> Policy:
    """Switch the org's mode; SSO needs an active connection, managed mode also a
    verified domain (JIT accounts come only from verified domains)."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    mode, optional = parse_mode(name)
    refused = mode_refusal(
        mode, active_connection=has_active_connection(db, org.id),
        verified_domain=_has_verified_domain(db, org.id),
    )  # fmt: skip
    if refused is not None:
        raise refused
    row = settings_row(db, org.id)
    old = Policy.of_row(row).name
    row.mode, row.optional, row.updated_at = mode.value, optional, rt.now()
    _changed(db, actor, org, "sso.settings_changed", {"mode": {"from": old, "to": name}})
    return Policy.of_row(row)


def parse_mode(name: str) -> tuple[SsoMode, bool]:
    """Pure: a mode as the CLI and the API spell it -> (mode, optional)."""
    if name not in MODE_NAMES:
        raise BadRequest(f"Choose a mode among {', '.join(MODE_NAMES)}.", code="invalid_mode")
    return MODE_NAMES[name]


def mode_refusal(
    mode: SsoMode, *, active_connection: bool, verified_domain: bool
) -> HubgateError | None:
    """Pure: why the org may not switch to ``mode``, if so: SSO needs an active
    connection, managed mode also a verified domain (JIT accounts come only from
    verified domains)."""
    if mode is not SsoMode.OFF and not active_connection:
        return Conflict(
            "Activate a verified SSO connection before turning SSO on.", code="sso_not_configured"
        )
    if mode is SsoMode.MANAGED and not verified_domain:
        return Conflict("Managed mode needs a verified email domain.", code="domain_required")
    return None


def timeout_refusal(session_timeout: timedelta) -> HubgateError | None:
    """Pure: an SSO session timeout is 1 hour to 90 days."""
    if MIN_TIMEOUT <= session_timeout <= MAX_TIMEOUT:
        return None
    return BadRequest("The session timeout must be 1 hour to 90 days.", code="invalid_setting")


def set_enforcement(
    db: Session, rt: Runtime, actor: Actor, principal: Principal, org: Org, enforced: bool
) -> Policy:
    """Lift (``False``) or restore managed mode's enforcement; both audited."""
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
    principal: Principal,
    org: Org,
    *,
    session_timeout: timedelta | None = None,
    default_role: OrgRole | None = None,
    default_team: str | None = None,
) -> Policy:
    """Session timeout (1 hour to 90 days), default role and default team."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = settings_row(db, org.id)
    changes: dict[str, Any] = {}
    if session_timeout is not None:
        refused = timeout_refusal(session_timeout)
        if refused is not None:
            raise refused
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


def has_active_connection(db: Session, org_id: int) -> bool:
    statement = select(SsoConnection.id).where(
        SsoConnection.org_id == org_id, SsoConnection.state == ConnectionState.ACTIVE
    )
    return db.scalar(statement.limit(1)) is not None


def _has_verified_domain(db: Session, org_id: int) -> bool:
    statement = select(OrgDomain.id).where(
        OrgDomain.org_id == org_id, OrgDomain.verified_at.is_not(None)
    )
    return db.scalar(statement.limit(1)) is not None


def may_activate(state: str, *, tested: bool, skip_test: bool) -> bool:
    """Pure: a connection becomes active once a test sign-in through it succeeded
    (``verified``, or ``inactive`` after one), unless the operator skips the test."""
    return (
        skip_test
        or state == ConnectionState.VERIFIED
        or (tested and state == ConnectionState.INACTIVE)
    )


def leaves_no_way_in(mode: SsoMode, *, active_connections: bool) -> bool:
    """Pure: SSO on (even optional) with no active connection left to sign in through."""
    return mode is not SsoMode.OFF and not active_connections


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
