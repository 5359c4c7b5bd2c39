"""Where SSO freshness enters the access decision.

:func:`sso_state` tells :func:`hubgate.access.decide` whether the org's SSO binds
this credential and, if so, whether it holds a fresh SSO authentication for the
org: a session its own, a personal token any live session of its user's. Team
tokens, external collaborators, orgs with SSO off and the ``optional`` variant
are not bound. One primary-key read when the org has SSO settings, one indexed
read more when they bind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from hubgate.access import CredentialKind, SsoState
from hubgate.db.models import OrgSso, SsoAuthentication
from hubgate.db.types import utcnow

__all__ = [
    "NO_RULE",
    "SsoRule",
    "SsoStatus",
    "banner",
    "fresh_until",
    "rule_of",
    "sso_state",
    "sso_status",
]

_POLICY = select(OrgSso.mode, OrgSso.optional, OrgSso.session_timeout_seconds).where(
    OrgSso.org_id == bindparam("org_id")
)
_LIVE = (
    select(SsoAuthentication.authenticated_at, SsoAuthentication.idp_expires_at)
    .where(
        SsoAuthentication.org_id == bindparam("org_id"),
        SsoAuthentication.authenticated_at > bindparam("since"),
        or_(
            SsoAuthentication.idp_expires_at.is_(None),
            SsoAuthentication.idp_expires_at > bindparam("now"),
        ),
    )
    .order_by(SsoAuthentication.authenticated_at.desc())
    .limit(1)
)
_BY_SESSION = _LIVE.where(SsoAuthentication.session_id == bindparam("session_id"))
_BY_USER = _LIVE.where(SsoAuthentication.user_id == bindparam("user_id"))
_BOUND = (CredentialKind.SESSION, CredentialKind.PERSONAL_TOKEN)


class SsoRule(NamedTuple):
    """An org's SSO settings as freshness needs them; all ``None`` when it has none
    (callers that already joined ``org_sso`` pass it, sparing a query)."""

    mode: str | None
    optional: bool | None
    timeout_seconds: int | None

    @property
    def binds(self) -> bool:
        return self.mode not in (None, "off") and not self.optional


def rule_of(db: Session, org_id: int) -> SsoRule:
    row = db.execute(_POLICY, {"org_id": org_id}).first()
    return SsoRule(row.mode, row.optional, row.session_timeout_seconds) if row else NO_RULE


NO_RULE = SsoRule(None, None, None)


@dataclass(frozen=True, slots=True)
class SsoStatus:
    state: SsoState
    fresh_until: datetime | None = None


NOT_REQUIRED = SsoStatus(SsoState.NOT_REQUIRED)


def sso_status(
    db: Session,
    org_id: int,
    credential_kind: CredentialKind,
    user_id: int | None,
    session_id: int | None = None,
    *,
    external: bool = False,
    rule: SsoRule | None = None,
    now: datetime | None = None,
) -> SsoStatus:
    """The SSO state of a member's credential for ``org_id``, and until when a
    fresh one stays fresh."""
    if credential_kind not in _BOUND or external or user_id is None:
        return NOT_REQUIRED
    rule = rule or rule_of(db, org_id)
    if not rule.binds or rule.timeout_seconds is None:
        return NOT_REQUIRED
    now = now or utcnow()
    timeout = timedelta(seconds=rule.timeout_seconds)
    params = {
        "org_id": org_id, "now": now, "since": now - timeout, "session_id": session_id,
        "user_id": user_id,
    }  # fmt: skip
    by_session = credential_kind is CredentialKind.SESSION
    found = db.execute(_BY_SESSION if by_session else _BY_USER, params).first()
    if found is None:
        return SsoStatus(SsoState.STALE)
    return SsoStatus(
        SsoState.FRESH, fresh_until(found.authenticated_at, found.idp_expires_at, timeout)
    )


def fresh_until(
    authenticated_at: datetime, idp_expires_at: datetime | None, timeout: timedelta
) -> datetime:
    """When one SSO authentication stops counting: the org's session timeout after
    it, or the IdP's own session expiry if that comes first."""
    until = authenticated_at + timeout
    return min(until, idp_expires_at) if idp_expires_at is not None else until


def sso_state(
    db: Session,
    org_id: int,
    credential_kind: CredentialKind,
    user_id: int | None,
    session_id: int | None = None,
    *,
    external: bool = False,
    rule: SsoRule | None = None,
) -> SsoState:
    return sso_status(
        db, org_id, credential_kind, user_id, session_id, external=external, rule=rule
    ).state


def banner(
    db: Session, org_id: int, state: SsoState, user_id: int | None, session_id: int | None
) -> str | None:
    """What an org page tells a signed-in member: ``required`` (SSO blocks them),
    ``optional`` (the org rolls SSO out and this session has none yet), or nothing."""
    if state is SsoState.STALE:
        return "required"
    if session_id is None or user_id is None:
        return None
    rule = rule_of(db, org_id)
    if rule.mode in (None, "off") or not rule.optional:
        return None
    as_if_required = rule._replace(optional=False)
    status = sso_status(
        db, org_id, CredentialKind.SESSION, user_id, session_id, rule=as_if_required
    )
    return "optional" if status.state is SsoState.STALE else None
