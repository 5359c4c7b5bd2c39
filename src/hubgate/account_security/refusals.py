"""Refusals that are recorded before they are raised.

A service that refuses writes the audit record in the caller's transaction and
returns :class:`Refused` instead of raising, so the record survives: the caller
commits, then raises or shows ``error``. Nothing else was changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.audit import Actor
from hubgate.errors import HubgateError

__all__ = ["Refused", "raise_refused", "refuse"]


@dataclass(frozen=True, slots=True)
class Refused:
    """An audited refusal; the caller commits, then raises or shows ``error``."""

    error: HubgateError


def refuse(
    db: Session,
    actor: Actor,
    action: str,
    target: str,
    error: HubgateError,
    *,
    org_id: int | None = None,
) -> Refused:
    audit.record(db, actor, action, org_id=org_id, target=target[:254], reason=error.code)
    return Refused(error)


def raise_refused(outcome: object) -> None:
    """Raise the error of a :class:`Refused` outcome (after its transaction committed)."""
    if isinstance(outcome, Refused):
        raise outcome.error
