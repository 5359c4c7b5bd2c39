"""From a request's credential to a :class:`~hubgate.access.Principal` for one org,
and from a :class:`~hubgate.access.Deny` to the error the caller sees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from hubgate import metrics
from hubgate.access import (
    Action,
    CredentialKind,
    Deny,
    OrgRole,
    OrgTarget,
    Principal,
    ResourceKind,
    ResourceTarget,
    Scope,
    SsoState,
    Target,
    TeamRole,
    Visibility,
    decide,
)
from hubgate.db.models import Membership, Org, OrgSso, Resource, Team, TeamMembership
from hubgate.errors import Forbidden, HubgateError, NotFound, Unauthenticated
from hubgate.freshness import NO_RULE, SsoRule, sso_state

__all__ = [
    "Credential",
    "OrgScope",
    "denial_error",
    "principal_for",
    "require",
    "resource_access",
]


@dataclass(frozen=True, slots=True)
class Credential:
    """Who the request is, before any org is considered.

    ``subject`` names who acts (a person's email, or ``token:ID`` for a team
    token) and is what forward-auth hands upstream; ``label`` is what the audit
    log records (it also names the token a person used)."""

    kind: CredentialKind
    user_id: int | None = None
    label: str = "anonymous"
    subject: str = ""
    session_id: int | None = None
    token_id: int | None = None
    scopes: frozenset[Scope] = frozenset()
    team_id: int | None = None
    org_id: int | None = None

    @property
    def is_user(self) -> bool:
        return self.user_id is not None and self.kind is not CredentialKind.TEAM_TOKEN


ANONYMOUS = Credential(kind=CredentialKind.ANONYMOUS)

OrgScope = Callable[[Session], tuple[Org, Principal]]
"""The org and the caller as seen from it, read again in each transaction (for a
service that runs several, with a network call between them)."""


def principal_for(db: Session, credential: Credential, org_id: int) -> Principal:
    """Load what :func:`decide` needs about ``credential`` inside ``org_id``."""
    if not credential.is_user:
        return _non_member_principal(credential)
    role, team_roles, external, rule = _membership(db, org_id, credential.user_id)
    return _member_principal(db, credential, org_id, role, team_roles, external, rule)


def _non_member_principal(credential: Credential) -> Principal:
    """Anonymous callers and team tokens: no membership to load."""
    if credential.kind is CredentialKind.TEAM_TOKEN:
        return Principal(
            credential=credential.kind,
            org_id=credential.org_id,
            scopes=credential.scopes,
            token_team_id=credential.team_id,
        )
    return Principal.anonymous()


def _member_principal(
    db: Session,
    credential: Credential,
    org_id: int,
    role: OrgRole | None,
    team_roles: dict[int, TeamRole],
    external: bool,
    rule: SsoRule,
) -> Principal:
    sso = SsoState.NOT_REQUIRED
    if role is not None and rule.binds:
        sso = sso_state(
            db, org_id, credential.kind, credential.user_id, credential.session_id,
            external=external, rule=rule,
        )  # fmt: skip
    return Principal(
        credential=credential.kind,
        user_id=credential.user_id,
        org_id=org_id if role is not None else None,
        org_role=role,
        team_roles=team_roles,
        scopes=credential.scopes,
        sso=sso,
    )


def _membership(
    db: Session, org_id: int, user_id: int | None
) -> tuple[OrgRole | None, dict[int, TeamRole], bool, SsoRule]:
    """The org role, team roles, external-collaborator flag and the org's SSO rule
    in one query; a deactivated member (SCIM ``active=false``) is no member."""
    org_teams = select(Team.id).where(Team.org_id == org_id).scalar_subquery()
    rows = db.execute(
        select(
            Membership.role,
            TeamMembership.team_id,
            TeamMembership.role,
            Membership.external_collaborator,
            OrgSso.mode,
            OrgSso.optional,
            OrgSso.session_timeout_seconds,
        )
        .outerjoin(OrgSso, OrgSso.org_id == Membership.org_id)
        .outerjoin(
            TeamMembership,
            and_(
                TeamMembership.user_id == Membership.user_id, TeamMembership.team_id.in_(org_teams)
            ),
        )
        .where(
            Membership.org_id == org_id,
            Membership.user_id == user_id,
            Membership.deactivated_at.is_(None),
        )  # fmt: skip
    ).all()
    if not rows:
        return None, {}, False, NO_RULE
    first = rows[0]
    teams = {row[1]: TeamRole.parse(row[2]) for row in rows if row[1] is not None}
    return OrgRole.parse(first[0]), teams, bool(first[3]), SsoRule(first[4], first[5], first[6])


# Built once: forward-auth runs this on every request. The resource, and the
# caller's org role and role in the resource's own team (all decide() needs for it).
_RESOURCE_ACCESS = (
    select(
        Resource.id,
        Resource.org_id,
        Resource.kind,
        Resource.visibility,
        Resource.team_id,
        Resource.creator_id,
        Membership.role.label("org_role"),
        Membership.external_collaborator,
        TeamMembership.role.label("team_role"),
        OrgSso.mode.label("sso_mode"),
        OrgSso.optional.label("sso_optional"),
        OrgSso.session_timeout_seconds.label("sso_timeout"),
    )
    .join(Org, Org.id == Resource.org_id)
    .outerjoin(OrgSso, OrgSso.org_id == Resource.org_id)
    .outerjoin(
        Membership,
        and_(
            Membership.org_id == Resource.org_id,
            Membership.user_id == bindparam("user_id"),
            Membership.deactivated_at.is_(None),
        ),
    )
    .outerjoin(
        TeamMembership,
        and_(
            TeamMembership.team_id == Resource.team_id,
            TeamMembership.user_id == bindparam("user_id"),
        ),
    )
    .where(
        Org.name == bindparam("org"),
        Resource.kind == bindparam("kind"),
        Resource.name == bindparam("name"),
    )
)


def resource_access(
    db: Session, credential: Credential, org: str, kind: ResourceKind, name: str
) -> tuple[ResourceTarget, Principal, int] | None:
    """The resource ``org/kind/name``, the principal asking for it and the
    resource's id (what usage is counted against), in one query; ``None`` if
    there is no such resource."""
    user_id = credential.user_id if credential.is_user else None
    params = {"org": org, "kind": kind.value, "name": name, "user_id": user_id}
    row = db.execute(_RESOURCE_ACCESS, params).first()
    if row is None:
        return None
    target = ResourceTarget(
        org_id=row.org_id, kind=kind, visibility=Visibility(row.visibility),
        team_id=row.team_id, creator_id=row.creator_id,
    )  # fmt: skip
    if not credential.is_user:
        return target, _non_member_principal(credential), row.id
    role = OrgRole.parse(row.org_role) if row.org_role else None
    teams = {row.team_id: TeamRole.parse(row.team_role)} if row.team_role and role else {}
    external = bool(row.external_collaborator)
    rule = SsoRule(row.sso_mode, row.sso_optional, row.sso_timeout)
    principal = _member_principal(db, credential, row.org_id, role, teams, external, rule)
    return target, principal, row.id


def require(principal: Principal, action: Action, target: Target) -> None:
    """Raise the caller-facing error unless :func:`decide` allows."""
    decision = decide(principal, action, target)
    if isinstance(decision, Deny):
        metrics.DECISIONS.labels("service", decision.reason).inc()
        raise denial_error(principal, decision, target)
    metrics.DECISIONS.labels("service", "allow").inc()


def denial_error(principal: Principal, denial: Deny, target: Target) -> HubgateError:
    """Map a refusal to what the caller may learn: nothing it cannot read is revealed."""
    reason = denial.reason
    if reason == "credential_revoked":
        return Unauthenticated("The credential was revoked.", code="token_revoked")
    if reason == "sso_required":
        return Unauthenticated(
            "This organization requires a recent single sign-on.", code="sso_required",
            org_id=principal.org_id,
        )  # fmt: skip
    if isinstance(target, ResourceTarget) and not _could_read(principal, target):
        return NotFound()
    if reason == "not_member" and not isinstance(target, OrgTarget):
        return NotFound()
    if reason == "sign_in_required":
        return Unauthenticated()
    return Forbidden(_MESSAGES.get(reason, Forbidden.default_message), code=reason)


def _could_read(principal: Principal, target: ResourceTarget) -> bool:
    """Whether the principal's user or team may read ``target``, whatever its token's
    scopes: a narrow token does not hide what its owner already knows exists."""
    widened = replace(principal, scopes=frozenset(Scope))
    return decide(widened, Action.READ, target).allowed


_MESSAGES = {
    "insufficient_role": "Your role in this organization does not allow this.",
    "team_restricted": "This belongs to a team you are not a member of.",
    "scope_insufficient": "The access token's scopes do not allow this.",
    "not_member": "You are not a member of this organization.",
}
