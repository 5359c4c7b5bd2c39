"""A connection's states under the org's policy: ``verified`` -> ``active``, and
back to ``inactive`` (DESIGN.md §1 "SSO connection"); the rules are
:func:`hubgate.sso.policy.may_activate` and :func:`~hubgate.sso.policy.leaves_no_way_in`.

Every function runs in the caller's transaction and never commits; every change
is audited.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import Conflict
from hubgate.principals import require
from hubgate.sso.policy import (
    SsoMode,
    has_active_connection,
    leaves_no_way_in,
    may_activate,
    policy_of,
)
from hubgate.sso.states import ConnectionState

__all__ = ["activate", "deactivate"]


def activate(
    db: Session,
    actor: Actor,
    principal: Principal,
    connection: SsoConnection,
    *,
    skip_test: bool = False,
) -> None:
    """``verified`` -> ``active``. Only the operator (:attr:`Principal.is_operator`)
    may skip the test sign-in, and that is audited as such."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    if not may_activate(
        connection.state, tested=connection.verified_at is not None,
        skip_test=skip_test and principal.is_operator,
    ):  # fmt: skip
        raise Conflict(
            "Run a successful test sign-in through this connection before activating it.",
            code="connection_unverified",
        )
    old, connection.state = connection.state, ConnectionState.ACTIVE.value
    audit.record(
        db, actor, "sso.connection_activated", org_id=connection.org_id,
        target=f"connection:{connection.id}", data={"from": old, "skip_test": skip_test},
    )  # fmt: skip


def deactivate(db: Session, actor: Actor, principal: Principal, connection: SsoConnection) -> None:
    """Switch a connection off; the org must not be left with SSO on and no way in."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    old, connection.state = connection.state, ConnectionState.INACTIVE.value
    db.flush()
    policy = policy_of(db, connection.org_id)
    active = policy.mode is SsoMode.OFF or has_active_connection(db, connection.org_id)
    if leaves_no_way_in(policy.mode, active_connections=active):
        raise Conflict(
            "This is the org's last active connection: turn SSO off first.", code="last_connection"
        )
    audit.record(
        db, actor, "sso.connection_deactivated", org_id=connection.org_id,
        target=f"connection:{connection.id}", data={"from": old},
    )  # fmt: skip
