"""Roles, actions and the one access decision.

:func:`decide` is pure: it looks only at data the caller already loaded (the
principal's membership, team roles, credential and SSO state, and the target's
visibility and team). Pages, the JSON API and forward-auth all ask it; nothing
else decides access.

The rules (DESIGN.md §1):

- a revoked or expired credential reaches nothing;
- ``call`` applies to deployments only;
- the operator (:meth:`Principal.operator`: the CLI, jobs, and those it lets act
  in one org) may do everything within its reach;
- a public resource is readable by anyone, signed in or not;
- everything else needs membership of the resource's org;
- org ``admin`` may do everything in the org;
- a resource in a team is reachable only by that team's members (and org admins);
  the team role alone decides: ``read`` reads, ``write`` also creates, writes,
  deploys and calls, ``admin`` also deletes and administers;
- a resource outside teams: ``read`` reads, ``contributor`` also creates and
  writes/deploys/calls/deletes what it created, ``write`` writes, deploys and
  calls everything;
- a team token acts as a ``write`` member of its own team and reaches nothing else;
- SSO freshness: when the org's SSO applies to this principal and its SSO
  authentication is missing or stale, everything but public reads answers
  ``sso_required`` (see :class:`SsoState`);
- last, a token's scopes narrow what its user (or team) may do, so a refusal
  names the deeper reason (``not_member`` before ``scope_insufficient``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

__all__ = [
    "Action",
    "Allow",
    "CredentialKind",
    "Decision",
    "Deny",
    "ORG_ROLE_NAMES",
    "OrgRole",
    "OrgTarget",
    "Principal",
    "ResourceKind",
    "ResourceTarget",
    "Scope",
    "SsoState",
    "TEAM_ROLE_NAMES",
    "Target",
    "TeamRole",
    "TeamTarget",
    "Visibility",
    "decide",
]


class OrgRole(IntEnum):
    """Org roles, lowest to highest; comparison follows privilege."""

    READ = 1
    CONTRIBUTOR = 2
    WRITE = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> OrgRole:
        return cls[value.upper()]


class TeamRole(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> TeamRole:
        return cls[value.upper()]


ORG_ROLE_NAMES: tuple[str, ...] = tuple(role.label for role in OrgRole)
"""The org roles as stored and spelled (``read`` ... ``admin``), lowest first: the
database's CHECK constraints, the pages' and the API's choices derive from it."""
TEAM_ROLE_NAMES: tuple[str, ...] = tuple(role.label for role in TeamRole)
"""The team roles as stored and spelled, lowest first."""


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    WRITE = "write"
    DEPLOY = "deploy"
    CALL = "call"
    DELETE = "delete"
    ADMIN = "admin"


class ResourceKind(StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    SPACE = "space"
    DEPLOYMENT = "deployment"

    @property
    def plural(self) -> str:
        return f"{self.value}s"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class CredentialKind(StrEnum):
    ANONYMOUS = "anonymous"
    SESSION = "session"
    PERSONAL_TOKEN = "personal_token"
    TEAM_TOKEN = "team_token"
    OPERATOR = "operator"
    """The operator, never a request's credential: see :meth:`Principal.operator`."""


class Scope(StrEnum):
    """Token scopes: personal tokens take read/write, team tokens full/inference/read."""

    READ = "read"
    WRITE = "write"
    FULL = "full"
    INFERENCE = "inference"


class SsoState(StrEnum):
    """Where SSO freshness enters the decision.

    ``NOT_REQUIRED``: the org has no SSO that binds this principal (SSO off, an
    external collaborator, a team token, or the ``optional`` variant).
    ``FRESH``: the principal's session holds an SSO authentication for the org
    younger than the org's session timeout. ``STALE``: SSO applies and there is
    no fresh authentication.
    """

    NOT_REQUIRED = "not_required"
    FRESH = "fresh"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as seen from one org (the target's org)."""

    credential: CredentialKind
    user_id: int | None = None
    org_id: int | None = None
    org_role: OrgRole | None = None
    team_roles: Mapping[int, TeamRole] = field(default_factory=dict)
    scopes: frozenset[Scope] = frozenset()
    token_team_id: int | None = None
    revoked: bool = False
    sso: SsoState = SsoState.NOT_REQUIRED

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(credential=CredentialKind.ANONYMOUS)

    @classmethod
    def operator(cls, org_id: int | None = None) -> Principal:
        """Who runs hubgate: the ``hubgate`` command, ``hubgate demo`` and the
        background jobs (``org_id`` None: every org), or whom it lets act in one org
        only: the setup portal's IT admin, an org's SCIM client. :func:`decide`
        allows it everything in its reach."""
        return cls(credential=CredentialKind.OPERATOR, org_id=org_id)

    @property
    def is_operator(self) -> bool:
        """The operator of the whole installation (not one scoped to an org): the
        only principal that may vouch for what hubgate would otherwise check (a
        domain without DNS, a connection without a test sign-in)."""
        return self.credential is CredentialKind.OPERATOR and self.org_id is None


@dataclass(frozen=True, slots=True)
class ResourceTarget:
    """A resource, or for ``create`` the resource that would be created."""

    org_id: int
    kind: ResourceKind
    visibility: Visibility
    team_id: int | None = None
    creator_id: int | None = None


@dataclass(frozen=True, slots=True)
class OrgTarget:
    """The org itself: ``read`` = see members and teams, ``admin`` = manage it."""

    org_id: int


@dataclass(frozen=True, slots=True)
class TeamTarget:
    """A team: ``read`` = see it, ``admin`` = manage its members and tokens."""

    org_id: int
    team_id: int


Target = ResourceTarget | OrgTarget | TeamTarget


@dataclass(frozen=True, slots=True)
class Allow:
    allowed = True


@dataclass(frozen=True, slots=True)
class Deny:
    """A refusal; ``reason`` is a stable code (``team_restricted``, ``sso_required`` ...)."""

    reason: str
    allowed = False


Decision = Allow | Deny
ALLOW = Allow()

_TEAM_ROLE_ACTIONS: Mapping[TeamRole, frozenset[Action]] = {
    TeamRole.READ: frozenset({Action.READ}),
    TeamRole.WRITE: frozenset(
        {Action.READ, Action.CREATE, Action.WRITE, Action.DEPLOY, Action.CALL}
    ),
    TeamRole.ADMIN: frozenset(Action),
}
_ORG_ROLE_ACTIONS: Mapping[OrgRole, frozenset[Action]] = {
    OrgRole.READ: frozenset({Action.READ}),
    OrgRole.CONTRIBUTOR: frozenset({Action.READ, Action.CREATE}),
    OrgRole.WRITE: frozenset(
        {Action.READ, Action.CREATE, Action.WRITE, Action.DEPLOY, Action.CALL}
    ),
    OrgRole.ADMIN: frozenset(Action),
}
_CREATOR_ACTIONS = frozenset({Action.WRITE, Action.DEPLOY, Action.CALL, Action.DELETE})
_SCOPE_ACTIONS: Mapping[Scope, frozenset[Action]] = {
    Scope.READ: frozenset({Action.READ}),
    Scope.WRITE: frozenset(Action),
    Scope.FULL: frozenset({Action.READ, Action.WRITE, Action.DEPLOY, Action.CALL}),
    Scope.INFERENCE: frozenset({Action.CALL}),
}
_TEAM_TOKEN_TEAM_ROLE = TeamRole.WRITE


def decide(principal: Principal, action: Action, target: Target) -> Decision:
    """Answer whether ``principal`` may do ``action`` on ``target``."""
    if principal.revoked:
        return Deny("credential_revoked")
    if action is Action.CALL and not _is_deployment(target):
        return Deny("not_callable")
    if principal.credential is CredentialKind.OPERATOR:
        return _decide_operator(principal, target)
    if _is_public_read(action, target):
        return ALLOW
    if principal.credential is CredentialKind.ANONYMOUS:
        return Deny("sign_in_required")
    if principal.org_id != target.org_id:
        return Deny("not_member")
    decision = _decide_by_role(principal, action, target)
    if decision.allowed and not _scopes_allow(principal, action):
        return Deny("scope_insufficient")
    return decision


def _decide_by_role(principal: Principal, action: Action, target: Target) -> Decision:
    if principal.credential is CredentialKind.TEAM_TOKEN:
        return _decide_team_token(principal, action, target)
    if principal.org_role is None:
        return Deny("not_member")
    if principal.sso is SsoState.STALE:
        return Deny("sso_required")
    return _decide_member(principal, principal.org_role, action, target)


def _decide_operator(principal: Principal, target: Target) -> Decision:
    """The operator reaches every org, or the one org it acts in."""
    if principal.org_id is None or principal.org_id == target.org_id:
        return ALLOW
    return Deny("not_member")


def _is_deployment(target: Target) -> bool:
    return isinstance(target, ResourceTarget) and target.kind is ResourceKind.DEPLOYMENT


def _is_public_read(action: Action, target: Target) -> bool:
    return (
        action is Action.READ
        and isinstance(target, ResourceTarget)
        and target.visibility is Visibility.PUBLIC
    )


def _scopes_allow(principal: Principal, action: Action) -> bool:
    if principal.credential not in (CredentialKind.PERSONAL_TOKEN, CredentialKind.TEAM_TOKEN):
        return True
    return any(action in _SCOPE_ACTIONS[scope] for scope in principal.scopes)


def _decide_team_token(principal: Principal, action: Action, target: Target) -> Decision:
    """A team token acts as a ``write`` member of its team and nothing more."""
    if not isinstance(target, ResourceTarget) or target.team_id is None:
        return Deny("team_restricted")
    if target.team_id != principal.token_team_id:
        return Deny("team_restricted")
    return _by_actions(_TEAM_ROLE_ACTIONS[_TEAM_TOKEN_TEAM_ROLE], action)


def _decide_member(principal: Principal, role: OrgRole, action: Action, target: Target) -> Decision:
    if role is OrgRole.ADMIN:
        return ALLOW
    if isinstance(target, OrgTarget):
        return ALLOW if action is Action.READ else Deny("insufficient_role")
    if isinstance(target, TeamTarget):
        return _decide_team_target(principal, action, target.team_id)
    if target.team_id is None:
        return _decide_org_resource(principal, role, action, target)
    return _decide_team_resource(principal, action, target.team_id)


def _decide_team_target(principal: Principal, action: Action, team_id: int) -> Decision:
    if action is Action.READ:
        return ALLOW
    if principal.team_roles.get(team_id) is TeamRole.ADMIN:
        return ALLOW
    return Deny("insufficient_role")


def _decide_org_resource(
    principal: Principal, role: OrgRole, action: Action, target: ResourceTarget
) -> Decision:
    if action in _ORG_ROLE_ACTIONS[role]:
        return ALLOW
    if _is_creator(principal, role, target) and action in _CREATOR_ACTIONS:
        return ALLOW
    return Deny("insufficient_role")


def _decide_team_resource(principal: Principal, action: Action, team_id: int) -> Decision:
    team_role = principal.team_roles.get(team_id)
    if team_role is None:
        return Deny("team_restricted")
    return _by_actions(_TEAM_ROLE_ACTIONS[team_role], action)


def _is_creator(principal: Principal, role: OrgRole, target: ResourceTarget) -> bool:
    return (
        role >= OrgRole.CONTRIBUTOR
        and principal.user_id is not None
        and target.creator_id == principal.user_id
    )


def _by_actions(allowed: frozenset[Action], action: Action) -> Decision:
    return ALLOW if action in allowed else Deny("insufficient_role")
