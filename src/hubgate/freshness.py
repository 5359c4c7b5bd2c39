"""Where SSO freshness enters the access decision.

:func:`sso_state` tells :func:`hubgate.access.decide` whether the org's SSO binds
this credential and, if so, whether it holds a fresh SSO authentication for the
org: a session its own, a personal token any live session of its user's. Team
tokens, external collaborators, orgs with SSO off and the ``optional`` variant
are not bound. One primary-key read when the org has SSO settings, one indexed
read more when they bind.

The rules themselves are pure functions over plain values (:func:`sso_binds`,
:func:`credential_bound`, :func:`fresh_until`, :func:`status_at`); the queries
only find the newest authentication that could still count.
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
    "credential_bound",
    "fresh_until",
    "rule_of",
    "sso_binds",
    "sso_state",
    "sso_status",
    "status_at",
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
        return sso_binds(self.mode, self.optional)


def sso_binds(mode: str | None, optional: bool | None) -> bool:
    """Whether an org's SSO binds its members' private access to a fresh SSO
    authentication: SSO is on (``basic`` or ``managed``) and not the ``optional``
    roll-out variant. The one place this rule is written."""
    return mode not in (None, "off") and not optional


def credential_bound(
    credential_kind: CredentialKind, user_id: int | None, rule: SsoRule, *, external: bool
) -> bool:
    """Whether this credential of a member must hold a fresh SSO authentication: a
    person's session or personal token (not a team token, not an external
    collaborator) in an org whose SSO binds."""
    return _a_person(credential_kind, user_id, external=external) and (
        rule.binds and rule.timeout_seconds is not None
    )


def _a_person(credential_kind: CredentialKind, user_id: int | None, *, external: bool) -> bool:
    return credential_kind in _BOUND and not external and user_id is not None


def rule_of(db: Session, org_id: int) -> SsoRule:
    row = db.execute(_POLICY, {"org_id": org_id}).first()
    return SsoRule(row.mode, row.optional, row.session_timeout_seconds) if row else NO_RULE


NO_RULE = SsoRule(None, None, None)


@dataclass(frozen=True, slots=True)
class SsoStatus:
    """``fresh_until`` is the sooner of the org's timeout (``timeout`` after the
    sign-in) and the IdP's own session expiry; ``idp_capped`` says the IdP's came
    first, so a page can say why a week's timeout left only hours."""

    state: SsoState
    fresh_until: datetime | None = None
    timeout: timedelta | None = None
    idp_capped: bool = False


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
    if rule is None:  # read only for a credential that SSO could bind
        person = _a_person(credential_kind, user_id, external=external)
        rule = rule_of(db, org_id) if person else NO_RULE
    bound = credential_bound(credential_kind, user_id, rule, external=external)
    if not bound or rule.timeout_seconds is None:
        return NOT_REQUIRED
    now = now or utcnow()
    timeout = timedelta(seconds=rule.timeout_seconds)
    params = {
        "org_id": org_id, "now": now, "since": now - timeout, "session_id": session_id,
        "user_id": user_id,
    }  # fmt: skip
    by_session = credential_kind is CredentialKind.SESSION
    found = db.execute(_BY_SESSION if by_session else _BY_USER, params).first()
    held = None if found is None else (found.authenticated_at, found.idp_expires_at)
    return status_at(now, held, timeout)


def status_at(
    now: datetime, held: tuple[datetime, datetime | None] | None, timeout: timedelta
) -> SsoStatus:
    """The SSO state at ``now`` of a bound credential holding ``held`` (its newest
    SSO authentication: when it happened and the IdP's own session expiry, if
    any), or nothing: fresh until :func:`fresh_until`, stale from then on."""
    if held is None:
        return SsoStatus(SsoState.STALE, timeout=timeout)
    until = fresh_until(held[0], held[1], timeout)
    if now >= until:
        return SsoStatus(SsoState.STALE, timeout=timeout)
    return SsoStatus(SsoState.FRESH, until, timeout, idp_capped=until < held[0] + timeout)


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
    as_if_required = rule._replace(optional=False)
    if rule.binds or not as_if_required.binds:
        return None
    status = sso_status(
        db, org_id, CredentialKind.SESSION, user_id, session_id, rule=as_if_required
    )
    return "optional" if status.state is SsoState.STALE else None
