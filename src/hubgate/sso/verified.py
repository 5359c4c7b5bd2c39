"""What a protocol adapter hands the SSO policy: the verified Identity, where the
browser goes next, and what verifying used up in the shared store.

The ACS and the OIDC callback verify the IdP's answer and, through an active
connection, run the org's policy in one transaction. When the policy refuses (or
loses a race for a unique row), that transaction rolls back with the adapter's
writes; :func:`settle` writes them again, so a refused answer stays spent and its
Identity stays in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from hubgate import store
from hubgate.audit import Actor
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.connections import Through
from hubgate.sso.identity import Identity

__all__ = ["SignInResult", "Spent", "settle"]


@dataclass(frozen=True, slots=True)
class Spent:
    """Keys verifying took: pending requests consumed (purpose, key), and ids first
    used in a :class:`~hubgate.store.ReplayStore` (purpose, key, expiry)."""

    consumed: tuple[tuple[str, str], ...] = ()
    seen: tuple[tuple[str, str, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class SignInResult:
    connection: Through
    identity: Identity
    next: str
    spent: Spent = Spent()


def settle(db: Session, rt: Runtime, actor: Actor, result: SignInResult) -> None:
    """Take again what verifying took, and audit the verified Identity; a key some
    other request took meanwhile stays taken."""
    for purpose, key in result.spent.consumed:
        store.consume(db, purpose, key, rt.now())
    for purpose, key, expires_at in result.spent.seen:
        store.ReplayStore(db, purpose).first_use(key, expires_at)
    connections.identity_verified(db, rt, actor, result.connection, result.identity)
