"""The one access decision, :func:`hubgate.access.decide` (DESIGN.md §1 and §3).

Three parts:

- a table over every combination of target, credential, org role and team role
  (the parametrized ids), each checked for every action, resource kind, creator,
  home org, SSO state and revocation against :func:`oracle`, a plain restatement
  of the rules written for this test from the module docstring and DESIGN.md;
  a failure lists every combination that disagrees;
- a few rows spelled out as examples, for the reader;
- Hypothesis properties that must hold for any principal and any target.

Principals in the table carry their org role and team roles whatever their
credential, so an anonymous caller or a team token with stray membership data
shows that such data is ignored. Every principal is also admin of another team
(:data:`OTHER_TEAM`), which must never matter for the resource's team.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.access import (
    Action,
    Allow,
    CredentialKind,
    Decision,
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
    TeamTarget,
    Visibility,
    decide,
)

ORG = 1
OTHER_ORG = 2
TEAM = 10  # the resource's team, when it has one; the team of a TeamTarget
OTHER_TEAM = 11
ALICE = 100  # the principal, when it is a user
BOB = 101  # someone else

# --- the rules, restated -----------------------------------------------------

EVERYTHING = frozenset(Action)
READS = frozenset({Action.READ})
WRITES = frozenset({Action.READ, Action.CREATE, Action.WRITE, Action.DEPLOY, Action.CALL})
"""What "writes, deploys and calls" grants: org role ``write``, team role ``write``."""

ORG_ROLE_GRANTS = {
    OrgRole.READ: READS,
    OrgRole.CONTRIBUTOR: frozenset({Action.READ, Action.CREATE}),
    OrgRole.WRITE: WRITES,
    OrgRole.ADMIN: EVERYTHING,
}
TEAM_ROLE_GRANTS = {TeamRole.READ: READS, TeamRole.WRITE: WRITES, TeamRole.ADMIN: EVERYTHING}
CREATOR_GRANTS = frozenset({Action.WRITE, Action.DEPLOY, Action.CALL, Action.DELETE})
SCOPE_GRANTS = {
    Scope.READ: READS,
    Scope.WRITE: EVERYTHING,
    Scope.FULL: frozenset({Action.READ, Action.WRITE, Action.DEPLOY, Action.CALL}),
    Scope.INFERENCE: frozenset({Action.CALL}),
}


@dataclass(frozen=True)
class Cred:
    """A credential variant of the table: its kind, its one scope, its team."""

    label: str
    kind: CredentialKind
    scope: Scope | None = None
    own_team: bool = False  # team tokens: issued for TEAM (else for OTHER_TEAM)


CREDS = (
    Cred("anonymous", CredentialKind.ANONYMOUS),
    Cred("session", CredentialKind.SESSION),
    Cred("personal:read", CredentialKind.PERSONAL_TOKEN, Scope.READ),
    Cred("personal:write", CredentialKind.PERSONAL_TOKEN, Scope.WRITE),
    *(
        Cred(f"team:{scope}@{'own' if own else 'other'}", CredentialKind.TEAM_TOKEN, scope, own)
        for scope in (Scope.FULL, Scope.INFERENCE, Scope.READ)
        for own in (True, False)
    ),
)
TARGETS = ("public", "private", "public-in-team", "private-in-team", "org", "team")


@dataclass(frozen=True)
class Case:
    """One row of the table, in the words of the rules."""

    target: str  # one of TARGETS
    cred: Cred
    org_role: OrgRole | None
    team_role: TeamRole | None  # in TEAM
    action: Action
    kind: ResourceKind = ResourceKind.MODEL
    creator: bool = False  # the principal created the resource
    same_org: bool = True  # the principal is seen from the target's org
    sso: SsoState = SsoState.NOT_REQUIRED
    revoked: bool = False

    @property
    def is_resource(self) -> bool:
        return self.target not in ("org", "team")

    @property
    def public(self) -> bool:
        return self.target.startswith("public")

    @property
    def in_team(self) -> bool:
        return self.target.endswith("in-team")


def oracle(case: Case) -> str | None:
    """The expected answer: ``None`` to allow, else the reason of the refusal."""
    if case.revoked:
        return "credential_revoked"
    if case.action is Action.CALL and not (
        case.is_resource and case.kind is ResourceKind.DEPLOYMENT
    ):
        return "not_callable"  # only deployments are called
    if case.public and case.action is Action.READ:
        return None
    if case.cred.kind is CredentialKind.ANONYMOUS:
        return "sign_in_required"
    if not case.same_org:
        return "not_member"
    answer = by_role(case)
    if answer is None and case.cred.scope is not None:
        return None if case.action in SCOPE_GRANTS[case.cred.scope] else "scope_insufficient"
    return answer  # scopes narrow last, so a refusal names the deeper reason


def by_role(case: Case) -> str | None:
    if case.cred.kind is CredentialKind.TEAM_TOKEN:
        return team_token_answer(case)
    if case.org_role is None:
        return "not_member"
    if case.sso is SsoState.STALE:
        return "sso_required"  # everything but public reads, which allowed above
    return member_answer(case, case.org_role)


def team_token_answer(case: Case) -> str | None:
    """A team token is a ``write`` member of its own team's resources, nothing more."""
    if not (case.in_team and case.cred.own_team):
        return "team_restricted"
    return None if case.action in WRITES else "insufficient_role"


def member_answer(case: Case, org_role: OrgRole) -> str | None:
    """A member (session or personal token) whose scope and SSO already passed."""
    if org_role is OrgRole.ADMIN:
        return None
    if case.target == "org":
        return None if case.action is Action.READ else "insufficient_role"
    if case.target == "team":
        team_admin = case.team_role is TeamRole.ADMIN
        return None if case.action is Action.READ or team_admin else "insufficient_role"
    if case.in_team:  # the team role alone decides
        if case.team_role is None:
            return "team_restricted"
        return None if case.action in TEAM_ROLE_GRANTS[case.team_role] else "insufficient_role"
    creator = case.creator and org_role >= OrgRole.CONTRIBUTOR
    if case.action in ORG_ROLE_GRANTS[org_role] or (creator and case.action in CREATOR_GRANTS):
        return None
    return "insufficient_role"


# --- building the inputs of decide() ------------------------------------------


def principal_for(case: Case) -> Principal:
    return principal(
        case.cred, case.org_role, case.team_role, case.same_org, case.sso, case.revoked
    )


@functools.cache  # the table asks for the same 2,400 principals over and over
def principal(
    cred: Cred,
    org_role: OrgRole | None,
    team_role: TeamRole | None,
    same_org: bool,
    sso: SsoState,
    revoked: bool,
) -> Principal:
    team_roles = {OTHER_TEAM: TeamRole.ADMIN}
    if team_role is not None:
        team_roles[TEAM] = team_role
    is_user = cred.kind in (CredentialKind.SESSION, CredentialKind.PERSONAL_TOKEN)
    is_team_token = cred.kind is CredentialKind.TEAM_TOKEN
    return Principal(
        credential=cred.kind,
        user_id=ALICE if is_user else None,
        org_id=ORG if same_org else OTHER_ORG,
        org_role=org_role,
        team_roles=team_roles,
        scopes=frozenset({cred.scope}) if cred.scope else frozenset(),
        token_team_id=(TEAM if cred.own_team else OTHER_TEAM) if is_team_token else None,
        revoked=revoked,
        sso=sso,
    )


def target_for(case: Case) -> Target:
    return target(case.target, case.kind, case.creator)


@functools.cache
def target(name: str, kind: ResourceKind, creator: bool) -> Target:
    if name == "org":
        return OrgTarget(org_id=ORG)
    if name == "team":
        return TeamTarget(org_id=ORG, team_id=TEAM)
    return ResourceTarget(
        org_id=ORG,
        kind=kind,
        visibility=Visibility.PUBLIC if name.startswith("public") else Visibility.PRIVATE,
        team_id=TEAM if name.endswith("in-team") else None,
        creator_id=ALICE if creator else BOB,
    )


def answer(decision: Decision) -> str | None:
    assert decision.allowed is isinstance(decision, Allow)
    return decision.reason if isinstance(decision, Deny) else None


# --- the table ----------------------------------------------------------------

ORG_ROLES = (None, *OrgRole)
TEAM_ROLES = (None, *TeamRole)


def label(role: OrgRole | TeamRole | None) -> str:
    return "none" if role is None else role.label


@dataclass(frozen=True)
class Row:
    """One parametrized test: who asks for what target; the rest varies inside."""

    target: str
    cred: Cred
    org_role: OrgRole | None
    team_role: TeamRole | None


def rows() -> tuple[Row, ...]:
    return tuple(Row(*dims) for dims in itertools.product(TARGETS, CREDS, ORG_ROLES, TEAM_ROLES))


def row_id(row: Row) -> str:
    roles = f"org={label(row.org_role)}/team={label(row.team_role)}"
    return f"{row.target}/{row.cred.label}/{roles}"


def variants(row: Row) -> Iterator[Case]:
    """The row for every action, kind, creator, home org, SSO state and revocation."""
    is_resource = row.target not in ("org", "team")
    kinds = tuple(ResourceKind) if is_resource else (ResourceKind.MODEL,)
    creators = (False, True) if is_resource else (False,)
    who = (row.target, row.cred, row.org_role, row.team_role)
    dims = itertools.product(Action, kinds, creators, (True, False), SsoState, (False, True))
    for action, kind, creator, same_org, sso, revoked in dims:
        yield Case(*who, action, kind, creator, same_org, sso, revoked)


def describe(case: Case) -> str:
    return (
        f"{case.action}: kind={case.kind} creator={case.creator} same_org={case.same_org}"
        f" sso={case.sso} revoked={case.revoked}"
    )


@pytest.mark.parametrize("row", rows(), ids=row_id)
def test_decide_matches_the_rules(row: Row) -> None:
    mismatches = []
    for case in variants(row):
        got = answer(decide(principal_for(case), case.action, target_for(case)))
        want = oracle(case)
        if got != want:
            mismatches.append(f"{describe(case)}: got {got or 'allow'}, want {want or 'allow'}")
    assert not mismatches, "\n".join(mismatches)


def test_the_table_reaches_every_answer() -> None:
    """Guards the oracle: every denial class (and allow) occurs somewhere in the table."""
    answers = {oracle(case) for row in rows() for case in variants(row)}
    assert answers == {
        None,
        "credential_revoked",
        "sign_in_required",
        "not_member",
        "scope_insufficient",
        "team_restricted",
        "insufficient_role",
        "sso_required",
        "not_callable",
    }


# --- a few rows spelled out, as documentation ---------------------------------


def member(role: OrgRole | None, sso: SsoState = SsoState.NOT_REQUIRED) -> Principal:
    return Principal(
        credential=CredentialKind.SESSION, user_id=ALICE, org_id=ORG, org_role=role, sso=sso
    )


def personal_token(role: OrgRole | None, scope: Scope) -> Principal:
    return Principal(
        credential=CredentialKind.PERSONAL_TOKEN,
        user_id=ALICE,
        org_id=ORG,
        org_role=role,
        scopes=frozenset({scope}),
    )


def team_token(scope: Scope, team_id: int = TEAM) -> Principal:
    return Principal(
        credential=CredentialKind.TEAM_TOKEN,
        org_id=ORG,
        scopes=frozenset({scope}),
        token_team_id=team_id,
    )


def resource(
    visibility: Visibility = Visibility.PRIVATE, team_id: int | None = None, creator: int = BOB
) -> ResourceTarget:
    return ResourceTarget(ORG, ResourceKind.MODEL, visibility, team_id=team_id, creator_id=creator)


@pytest.mark.parametrize(
    ("principal", "action", "target", "expected"),
    [
        pytest.param(
            Principal.anonymous(),
            Action.READ,
            resource(Visibility.PUBLIC),
            Allow(),
            id="anyone-reads-public",
        ),
        pytest.param(
            Principal.anonymous(),
            Action.READ,
            resource(),
            Deny("sign_in_required"),
            id="anonymous-private",
        ),
        pytest.param(
            member(OrgRole.WRITE),
            Action.READ,
            resource(team_id=TEAM),
            Deny("team_restricted"),
            id="org-write-outside-the-team",
        ),
        pytest.param(
            member(OrgRole.CONTRIBUTOR),
            Action.DELETE,
            resource(creator=ALICE),
            Allow(),
            id="contributor-deletes-own",
        ),
        pytest.param(
            member(OrgRole.ADMIN, SsoState.STALE),
            Action.READ,
            OrgTarget(org_id=ORG),
            Deny("sso_required"),
            id="stale-admin-reads-org",
        ),
        pytest.param(
            personal_token(None, Scope.READ),
            Action.WRITE,
            resource(),
            Deny("not_member"),
            id="membership-named-before-scope",
        ),
        pytest.param(
            personal_token(OrgRole.WRITE, Scope.READ),
            Action.WRITE,
            resource(),
            Deny("scope_insufficient"),
            id="scope-narrows-a-writer",
        ),
        pytest.param(
            team_token(Scope.FULL),
            Action.CREATE,
            resource(team_id=TEAM),
            Deny("scope_insufficient"),
            id="team-token-never-creates",
        ),
        pytest.param(
            team_token(Scope.WRITE),
            Action.DELETE,
            resource(team_id=TEAM),
            Deny("insufficient_role"),
            id="team-token-capped-at-team-write",
        ),
        pytest.param(
            member(OrgRole.WRITE),
            Action.CALL,
            resource(),
            Deny("not_callable"),
            id="only-deployments-are-called",
        ),
    ],
)
def test_examples(principal: Principal, action: Action, target: Target, expected: Decision) -> None:
    assert decide(principal, action, target) == expected


# --- properties ---------------------------------------------------------------

PROPERTY = settings(max_examples=300, database=None, deadline=None)

org_ids = st.sampled_from([None, ORG, OTHER_ORG])
team_ids = st.sampled_from([TEAM, OTHER_TEAM])
org_roles = st.none() | st.sampled_from(OrgRole)
# What a request can present; the operator (never a request's credential) has tests of its own.
REQUEST_CREDENTIALS = [k for k in CredentialKind if k is not CredentialKind.OPERATOR]
principals = st.builds(
    Principal,
    credential=st.sampled_from(REQUEST_CREDENTIALS),
    user_id=st.sampled_from([None, ALICE, BOB]),
    org_id=org_ids,
    org_role=org_roles,
    team_roles=st.dictionaries(team_ids, st.sampled_from(TeamRole)),
    scopes=st.frozensets(st.sampled_from(Scope)),
    token_team_id=st.none() | team_ids,
    revoked=st.booleans(),
    sso=st.sampled_from(SsoState),
)
live_principals = principals.map(lambda p: replace(p, revoked=False))


def resources(visibility: Visibility | None = None) -> st.SearchStrategy[ResourceTarget]:
    return st.builds(
        ResourceTarget,
        org_id=st.sampled_from([ORG, OTHER_ORG]),
        kind=st.sampled_from(ResourceKind),
        visibility=st.just(visibility) if visibility else st.sampled_from(Visibility),
        team_id=st.none() | team_ids,
        creator_id=st.sampled_from([None, ALICE, BOB]),
    )


targets = st.one_of(
    resources(),
    st.builds(OrgTarget, org_id=st.sampled_from([ORG, OTHER_ORG])),
    st.builds(TeamTarget, org_id=st.sampled_from([ORG, OTHER_ORG]), team_id=team_ids),
)


def allowed_actions(principal: Principal, target: Target) -> frozenset[Action]:
    return frozenset(a for a in Action if decide(principal, a, target).allowed)


# Roles only matter inside the principal's own org, with a live credential.
members = principals.map(lambda p: replace(p, org_id=ORG, revoked=False))
targets_in_org = targets.map(lambda t: replace(t, org_id=ORG))


def widening(allowed: list[frozenset[Action]]) -> bool:
    return all(low <= high for low, high in itertools.pairwise(allowed))


@PROPERTY
@given(members, targets_in_org)
def test_raising_the_org_role_never_removes_an_action(principal: Principal, target: Target) -> None:
    by_role = [allowed_actions(replace(principal, org_role=r), target) for r in ORG_ROLES]
    assert widening(by_role), by_role


@PROPERTY
@given(members, team_ids, targets_in_org)
def test_raising_a_team_role_never_removes_an_action(
    principal: Principal, team_id: int, target: Target
) -> None:
    def with_role(role: TeamRole | None) -> Principal:
        others = {t: r for t, r in principal.team_roles.items() if t != team_id}
        return replace(principal, team_roles=others if role is None else {**others, team_id: role})

    by_role = [allowed_actions(with_role(r), target) for r in TEAM_ROLES]
    assert widening(by_role), by_role


@PROPERTY
@given(live_principals, resources(Visibility.PUBLIC))
def test_a_public_resource_is_readable_by_anyone(
    principal: Principal, target: ResourceTarget
) -> None:
    assert decide(principal, Action.READ, target) == Allow()


outsiders = st.one_of(
    principals.map(
        lambda p: replace(p, org_id=ORG, org_role=None, credential=CredentialKind.SESSION)
    ),
    principals.map(
        lambda p: replace(p, org_id=ORG, org_role=None, credential=CredentialKind.PERSONAL_TOKEN)
    ),
    principals.map(lambda p: replace(p, org_id=OTHER_ORG)),
    principals.map(lambda p: replace(p, org_id=None)),
    st.just(Principal.anonymous()),
)


@PROPERTY
@given(outsiders, resources(Visibility.PRIVATE).map(lambda t: replace(t, org_id=ORG)))
def test_a_non_member_never_reaches_a_private_resource(
    principal: Principal, target: ResourceTarget
) -> None:
    assert allowed_actions(principal, target) == frozenset()


@PROPERTY
@given(principals.map(lambda p: replace(p, revoked=True)), st.sampled_from(Action), targets)
def test_a_revoked_credential_reaches_nothing(
    principal: Principal, action: Action, target: Target
) -> None:
    assert decide(principal, action, target) == Deny("credential_revoked")


@PROPERTY
@given(live_principals.map(lambda p: replace(p, credential=CredentialKind.TEAM_TOKEN)), targets)
def test_a_team_token_is_at_most_a_team_writer_of_its_own_team(
    principal: Principal, target: Target
) -> None:
    cap = WRITES if in_token_team(principal, target) else READS if is_public(target) else set()
    assert allowed_actions(principal, target) <= cap


def in_token_team(principal: Principal, target: Target) -> bool:
    """The target is a resource of the team the token was issued for."""
    if not isinstance(target, ResourceTarget) or target.team_id is None:
        return False
    return target.team_id == principal.token_team_id


def is_public(target: Target) -> bool:
    return isinstance(target, ResourceTarget) and target.visibility is Visibility.PUBLIC


@PROPERTY
@given(principals, targets)
def test_stale_sso_never_allows_more_than_fresh_or_not_required(
    principal: Principal, target: Target
) -> None:
    stale = allowed_actions(replace(principal, sso=SsoState.STALE), target)
    assert stale <= allowed_actions(replace(principal, sso=SsoState.NOT_REQUIRED), target)
    assert stale <= allowed_actions(replace(principal, sso=SsoState.FRESH), target)


@PROPERTY
@given(principals, st.sampled_from(Action), targets)
def test_fresh_sso_behaves_exactly_like_not_required(
    principal: Principal, action: Action, target: Target
) -> None:
    fresh = decide(replace(principal, sso=SsoState.FRESH), action, target)
    assert fresh == decide(replace(principal, sso=SsoState.NOT_REQUIRED), action, target)


# --- the operator ---------------------------------------------------------------


@PROPERTY
@given(st.sampled_from(Action), targets)
def test_the_operator_may_do_everything_in_every_org(action: Action, target: Target) -> None:
    expected = (
        Deny("not_callable") if action is Action.CALL and not is_deployment(target) else Allow()
    )
    assert decide(Principal.operator(), action, target) == expected
    assert Principal.operator().is_operator


@PROPERTY
@given(st.sampled_from(Action), targets)
def test_an_operator_scoped_to_an_org_reaches_that_org_only(action: Action, target: Target) -> None:
    scoped = Principal.operator(ORG)
    assert not scoped.is_operator  # it vouches for nothing hubgate would check
    if action is Action.CALL and not is_deployment(target):
        assert decide(scoped, action, target) == Deny("not_callable")
    elif target.org_id == ORG:
        assert decide(scoped, action, target) == Allow()
    else:
        assert decide(scoped, action, target) == Deny("not_member")


def is_deployment(target: Target) -> bool:
    return isinstance(target, ResourceTarget) and target.kind is ResourceKind.DEPLOYMENT
