"""Where SSO freshness enters the access decision.

:func:`sso_state` tells :func:`hubgate.access.decide` whether the org's SSO binds
this credential and, if so, whether the session holds a fresh SSO
authentication for the org. Until an org can turn SSO on (the SSO policy issue),
no org's SSO binds anyone, so every credential is ``NOT_REQUIRED``; the decision
itself already refuses ``STALE`` principals with ``sso_required``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hubgate.access import CredentialKind, SsoState

__all__ = ["sso_state"]


def sso_state(
    db: Session, org_id: int, credential_kind: CredentialKind, user_id: int | None
) -> SsoState:
    """The SSO state of ``user_id`` for ``org_id`` (team tokens are never bound by SSO)."""
    del db, org_id, credential_kind, user_id
    return SsoState.NOT_REQUIRED
