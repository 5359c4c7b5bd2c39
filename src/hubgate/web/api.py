"""The JSON API under ``/api/v1``: thin routes, one service call in one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from hubgate import audit, metrics
from hubgate.access import (
    Action,
    CredentialKind,
    OrgRole,
    OrgTarget,
    ResourceKind,
    Scope,
    TeamRole,
    TeamTarget,
    decide,
)
from hubgate.accounts import sessions, tokens, users
from hubgate.accounts.emails import normalize_email
from hubgate.db.models import Org, Resource, Team, Token, User
from hubgate.errors import Forbidden, NotFound, Unauthenticated
from hubgate.orgs import queries, resources, service, team_tokens
from hubgate.principals import Credential, require
from hubgate.runtime import Runtime
from hubgate.sso import enforcement
from hubgate.sso.freshness import sso_status
from hubgate.web import csrf, schemas
from hubgate.web.context import (
    CurrentCredential,
    CurrentUser,
    Rt,
    actor_of,
    client_address,
    org_scope,
    trace_id,
)
from hubgate.web.schemas import MAX_ROW_ID, RowId
from hubgate.web.session_cookie import clear_session_cookie, set_session_cookie

__all__ = ["router"]


def api_csrf(request: Request, rt: Rt, credential: CurrentCredential) -> None:
    """Cookie-authenticated changes must carry the CSRF token in ``X-CSRF-Token``."""
    if request.method in csrf.SAFE_METHODS:
        return
    if credential.session_id is not None:
        csrf.verify(request, rt, request.headers.get(csrf.HEADER))


router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_csrf)])
NO_NUL = r"^[^\x00]*$"


def _user_by_id(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No such person.")
    return user


def _user_by_email(db: Session, address: str) -> User:
    user = users.find_by_email(db, normalize_email(address))
    if user is None:
        raise NotFound("No account has that email; ask them to sign up first.")
    return user


# -- accounts ---------------------------------------------------------------


def _emails(user: User) -> list[schemas.EmailPublic]:
    return [
        schemas.EmailPublic(
            address=e.address, verified=e.verified_at is not None, primary=e.is_primary
        )
        for e in user.emails
    ]


@router.post("/signup", status_code=201, response_model=schemas.MePublic, tags=["accounts"])
def sign_up(body: schemas.UserCreate, request: Request, rt: Rt) -> schemas.MePublic:
    with rt.db.transaction() as db:
        actor = audit.Actor(
            label=body.email[:254], client_address=request.client.host if request.client else None
        )
        user = users.sign_up(db, rt, actor, body.email, body.password, body.display_name)
        return schemas.MePublic(
            id=user.id,
            display_name=user.display_name,
            emails=_emails(user),
            orgs=[],
            credential="none",
        )


@router.post("/login", response_model=schemas.MePublic, tags=["accounts"])
def log_in(
    body: schemas.LoginRequest, request: Request, response: Response, rt: Rt
) -> schemas.MePublic:
    cookie = password_sign_in(request, response, rt, body.email, body.password)
    with rt.db.transaction() as db:
        session = sessions.resolve(db, cookie, rt.lifetimes, rt.now())
        assert session is not None
        me = _me(db, rt, request, session.user_id, CredentialKind.SESSION, cookie, session.id)
    csrf.attach_cookie(request, response, rt)
    return me


def password_sign_in(
    request: Request, response: Response, rt: Runtime, email: str, password: str
) -> str:
    """Shared by the API and the sign-in page: check, rotate the session, set the cookie."""
    actor = audit.Actor(
        label=email[:254], client_address=client_address(request, rt.settings.trusted_proxies),
        trace_id=trace_id(request),
    )  # fmt: skip
    with rt.db.transaction() as db:
        outcome = users.password_sign_in(
            db, rt, actor, email, password, guard=enforcement.password_refusal
        )
        if isinstance(outcome, users.SignInRefused):
            metrics.SIGN_INS.labels("password", outcome.error.code).inc()
        else:
            old = request.cookies.get(sessions.COOKIE)
            if old:
                sessions.end(db, old)
            cookie, _id = sessions.start(
                db, outcome.id, rt.lifetimes, rt.now(), client_address=actor.client_address,
                user_agent=request.headers.get("user-agent"),
            )  # fmt: skip
    if isinstance(outcome, users.SignInRefused):
        raise outcome.error
    metrics.SIGN_INS.labels("password", "success").inc()
    set_session_cookie(response, rt, cookie)
    return cookie


@router.post("/logout", status_code=204, tags=["accounts"])
def log_out(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    response = Response(status_code=204)
    end_session(request, response, rt, credential)
    return response


def end_session(request: Request, response: Response, rt: Runtime, credential: Credential) -> None:
    """Shared by the API and the sign-out button: end the session, audit, clear the cookie."""
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        with rt.db.transaction() as db:
            sessions.end(db, cookie)
            audit.record(db, actor_of(request, rt, credential), "auth.logout")
    clear_session_cookie(response, rt)


def _me(
    db: Session,
    rt: Runtime,
    request: Request,
    user_id: int,
    kind: CredentialKind | None,
    cookie: str | None = None,
    session_id: int | None = None,
) -> schemas.MePublic:
    """Who the caller is: emails, orgs with role, teams and SSO state."""
    user = _user_by_id(db, user_id)
    orgs = []
    for org, role, teams in queries.orgs_of(db, user_id):
        status = sso_status(db, org.id, kind or CredentialKind.SESSION, user_id, session_id)
        orgs.append(
            schemas.MembershipSummary(
                org=org.name,
                role=role,
                teams=teams,
                sso=status.state.value,
                sso_fresh_until=status.fresh_until,
            )  # fmt: skip
        )
    token = csrf.token_for(request, rt, cookie) if kind is CredentialKind.SESSION else None
    return schemas.MePublic(
        id=user.id, display_name=user.display_name, emails=_emails(user), orgs=orgs,
        credential=kind.value if kind else "none", csrf_token=token,
    )  # fmt: skip


@router.get("/me", response_model=schemas.MePublic, tags=["accounts"])
def me(request: Request, rt: Rt, credential: CurrentCredential) -> schemas.MePublic:
    if not credential.is_user or credential.user_id is None:
        raise Unauthenticated()
    with rt.db.transaction() as db:
        return _me(
            db, rt, request, credential.user_id, credential.kind,
            session_id=credential.session_id,
        )  # fmt: skip


@router.post("/me/emails", status_code=201, response_model=schemas.EmailPublic, tags=["accounts"])
def add_email(
    body: schemas.EmailCreate,
    request: Request,
    rt: Rt,
    user: CurrentUser,
    credential: CurrentCredential,
) -> schemas.EmailPublic:
    with rt.db.transaction() as db:
        row = users.add_email(db, rt, actor_of(request, rt, credential), db.merge(user), body.email)
        return schemas.EmailPublic(address=row.address, verified=False, primary=False)


@router.delete("/me/emails/{address}", status_code=204, tags=["accounts"])
def remove_email(
    address: str, request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        users.remove_email(
            db, actor_of(request, rt, credential), db.merge(user), address[:254].lower()
        )
    return Response(status_code=204)


@router.post("/verify-email", response_model=schemas.EmailPublic, tags=["accounts"])
def verify_email(
    body: schemas.EmailVerify, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.EmailPublic:
    if credential.user_id is None or not credential.is_user:
        raise Unauthenticated("Sign in to the account that asked for this link first.")
    with rt.db.transaction() as db:
        actor = actor_of(request, rt, credential)
        row = users.verify_email(db, rt, actor, body.token, credential.user_id)
        return schemas.EmailPublic(address=row.address, verified=True, primary=row.is_primary)


def token_public(row: Token, team: str | None = None) -> schemas.TokenPublic:
    return schemas.TokenPublic(
        id=row.id, kind=row.kind, name=row.name, hint=row.hint, scopes=row.scopes.split(),
        team=team, created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )  # fmt: skip


def _created(new: tokens.NewToken, team: str | None = None) -> schemas.TokenCreated:
    return schemas.TokenCreated(**token_public(new.row, team).model_dump(), token=new.secret)


@router.get("/me/tokens", response_model=list[schemas.TokenPublic], tags=["tokens"])
def list_tokens(rt: Rt, user: CurrentUser) -> list[schemas.TokenPublic]:
    with rt.db.transaction() as db:
        return [token_public(t) for t in queries.personal_tokens(db, user.id)]


@router.post("/me/tokens", status_code=201, response_model=schemas.TokenCreated, tags=["tokens"])
def create_token(
    body: schemas.TokenCreate,
    request: Request,
    rt: Rt,
    user: CurrentUser,
    credential: CurrentCredential,
) -> schemas.TokenCreated:
    _require_session(credential)
    with rt.db.transaction() as db:
        actor = actor_of(request, rt, credential)
        return _created(
            tokens.create_personal(
                db, actor, user.id, body.name, body.scopes, body.expires_in_days, rt.now()
            )
        )


def _require_session(credential: Credential) -> None:
    """Tokens are minted from a signed-in browser session, not by other tokens."""
    if credential.session_id is None:
        raise Unauthenticated("Create tokens from a signed-in session.", code="session_required")


@router.delete("/me/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_token(
    token_id: RowId, request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        tokens.revoke_personal(db, actor_of(request, rt, credential), user.id, token_id, rt.now())
    return Response(status_code=204)


# -- organizations -----------------------------------------------------------


def _org_public(org: Org, active_admins: int | None = None) -> schemas.OrgPublic:
    return schemas.OrgPublic(
        name=org.name, display_name=org.display_name, created_at=org.created_at,
        active_admins=active_admins,
    )  # fmt: skip


@router.get("/orgs", response_model=list[schemas.OrgPublic], tags=["orgs"])
def my_orgs(rt: Rt, user: CurrentUser) -> list[schemas.OrgPublic]:
    with rt.db.transaction() as db:
        return [_org_public(org) for org, _role, _teams in queries.orgs_of(db, user.id)]


@router.post("/orgs", status_code=201, response_model=schemas.OrgPublic, tags=["orgs"])
def create_org(
    body: schemas.OrgCreate,
    request: Request,
    rt: Rt,
    user: CurrentUser,
    credential: CurrentCredential,
) -> schemas.OrgPublic:
    _require_session_or_write_token(credential)
    with rt.db.transaction() as db:
        actor = actor_of(request, rt, credential)
        org = service.create_org(db, actor, body.name, body.display_name, db.merge(user))
        return _org_public(org)


def _require_session_or_write_token(credential: Credential) -> None:
    if credential.token_id is not None and Scope.WRITE not in credential.scopes:
        raise Forbidden("The access token's scopes do not allow this.", code="scope_insufficient")


@router.get("/orgs/{org}", response_model=schemas.OrgPublic, tags=["orgs"])
def get_org(org: str, rt: Rt, credential: CurrentCredential) -> schemas.OrgPublic:
    """Anyone sees the org; those who may read it also see how many active admins it has."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        if not decide(principal, Action.READ, OrgTarget(found.id)).allowed:
            return _org_public(found)
        return _org_public(found, queries.active_admins(db, found.id))


def _member_public(row: queries.MemberRow) -> schemas.MemberPublic:
    return schemas.MemberPublic(
        user_id=row.user_id,
        email=row.email,
        display_name=row.display_name,
        role=row.role,
        teams=row.teams,
        role_source=row.role_source,
        role_detail=row.role_detail,
        role_pinned=row.role_pinned,
        role_origin=row.role_origin,
        active=row.active,
    )


def _member_row(db: Session, org: Org, user_id: int) -> schemas.MemberPublic:
    row = next(m for m in queries.members_of(db, org) if m.user_id == user_id)
    return _member_public(row)


@router.get("/orgs/{org}/members", response_model=list[schemas.MemberPublic], tags=["members"])
def list_members(org: str, rt: Rt, credential: CurrentCredential) -> list[schemas.MemberPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.READ, OrgTarget(found.id))
        return [_member_public(m) for m in queries.members_of(db, found)]


@router.post(
    "/orgs/{org}/members", status_code=201, response_model=schemas.MemberPublic, tags=["members"]
)
def add_member(
    org: str, body: schemas.MemberAdd, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.MemberPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        member = service.add_member(
            db, actor_of(request, rt, credential), principal, found,
            partial(_user_by_email, db, body.email), OrgRole.parse(body.role),
        )  # fmt: skip
        return _member_row(db, found, member.user_id)


@router.patch(
    "/orgs/{org}/members/{user_id}", response_model=schemas.MemberPublic, tags=["members"]
)
def set_member_role(
    org: str,
    user_id: RowId,
    body: schemas.MemberUpdate,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> schemas.MemberPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        member = service.set_role(
            db, actor_of(request, rt, credential), principal, found,
            partial(_user_by_id, db, user_id), OrgRole.parse(body.role), pin=body.pin,
        )  # fmt: skip
        return _member_row(db, found, member.user_id)


@router.delete(
    "/orgs/{org}/members/{user_id}/pin", response_model=schemas.MemberPublic, tags=["members"]
)
def unpin_member_role(
    org: str, user_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.MemberPublic:
    """Mappings decide the member's role again, from their next sign-in or SCIM push."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        person = partial(_user_by_id, db, user_id)
        member = service.unpin(db, actor_of(request, rt, credential), principal, found, person)
        return _member_row(db, found, member.user_id)


@router.delete("/orgs/{org}/members/{user_id}", status_code=204, tags=["members"])
def remove_member(
    org: str, user_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        person = partial(_user_by_id, db, user_id)
        service.remove_member(db, actor_of(request, rt, credential), principal, found, person)
    return Response(status_code=204)


# -- teams ------------------------------------------------------------------


def _team_public(row: queries.TeamRow) -> schemas.TeamPublic:
    return schemas.TeamPublic(
        name=row.team.name, display_name=row.team.display_name, is_default=row.team.is_default,
        members=[schemas.TeamMemberPublic(user_id=u, email=e, role=r) for u, e, r in row.members],
    )  # fmt: skip


def _team_row(db: Session, org: Org, name: str) -> schemas.TeamPublic:
    return _team_public(next(t for t in queries.teams_of(db, org) if t.team.name == name))


@router.get("/orgs/{org}/teams", response_model=list[schemas.TeamPublic], tags=["teams"])
def list_teams(org: str, rt: Rt, credential: CurrentCredential) -> list[schemas.TeamPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.READ, OrgTarget(found.id))
        return [_team_public(t) for t in queries.teams_of(db, found)]


@router.post(
    "/orgs/{org}/teams", status_code=201, response_model=schemas.TeamPublic, tags=["teams"]
)
def create_team(
    org: str, body: schemas.TeamCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.TeamPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        team = service.create_team(
            db, actor_of(request, rt, credential), principal, found, body.name, body.display_name
        )
        return _team_row(db, found, team.name)


@router.get("/orgs/{org}/teams/{team}", response_model=schemas.TeamPublic, tags=["teams"])
def get_team(org: str, team: str, rt: Rt, credential: CurrentCredential) -> schemas.TeamPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.READ, OrgTarget(found.id))
        return _team_row(db, found, service.get_team(db, found, team).name)


@router.delete("/orgs/{org}/teams/{team}", status_code=204, tags=["teams"])
def delete_team(
    org: str, team: str, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        service.delete_team(
            db, actor_of(request, rt, credential), principal, found,
            partial(service.get_team, db, found, team),
        )  # fmt: skip
    return Response(status_code=204)


@router.put(
    "/orgs/{org}/teams/{team}/members/{user_id}", response_model=schemas.TeamPublic, tags=["teams"]
)
def set_team_member(
    org: str,
    team: str,
    user_id: RowId,
    body: schemas.TeamMemberSet,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> schemas.TeamPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = service.get_team(db, found, team)
        service.set_team_member(
            db,
            actor_of(request, rt, credential),
            principal,
            found,
            row,
            _user_by_id(db, user_id),
            TeamRole.parse(body.role),
        )
        return _team_row(db, found, row.name)


@router.delete("/orgs/{org}/teams/{team}/members/{user_id}", status_code=204, tags=["teams"])
def remove_team_member(
    org: str, team: str, user_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = service.get_team(db, found, team)
        service.remove_team_member(
            db, actor_of(request, rt, credential), principal, found, row, _user_by_id(db, user_id)
        )
    return Response(status_code=204)


@router.get(
    "/orgs/{org}/teams/{team}/tokens", response_model=list[schemas.TokenPublic], tags=["tokens"]
)
def list_team_tokens(
    org: str, team: str, rt: Rt, credential: CurrentCredential
) -> list[schemas.TokenPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = service.get_team(db, found, team)
        require(principal, Action.ADMIN, TeamTarget(found.id, row.id))
        return [token_public(t, row.name) for t in queries.team_tokens(db, row.id)]


@router.post(
    "/orgs/{org}/teams/{team}/tokens",
    status_code=201,
    response_model=schemas.TokenCreated,
    tags=["tokens"],
)
def create_team_token(
    org: str,
    team: str,
    body: schemas.TokenCreate,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> schemas.TokenCreated:
    _require_session(credential)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = service.get_team(db, found, team)
        new = team_tokens.create(
            db,
            actor_of(request, rt, credential),
            principal,
            found,
            row,
            body.name,
            body.scopes,
            body.expires_in_days,
            rt.now(),
        )
        return _created(new, row.name)


@router.delete("/orgs/{org}/teams/{team}/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_team_token(
    org: str, team: str, token_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = service.get_team(db, found, team)
        team_tokens.revoke_team_token(
            db, actor_of(request, rt, credential), principal, found, row, token_id, rt.now()
        )
    return Response(status_code=204)


# -- resources --------------------------------------------------------------


def resource_public(db: Session, org: Org, row: Resource) -> schemas.ResourcePublic:
    team = db.get(Team, row.team_id) if row.team_id else None
    return schemas.ResourcePublic(
        kind=row.kind, name=row.name, org=org.name, visibility=row.visibility,
        team=team.name if team else None, description=row.description, created_at=row.created_at,
    )  # fmt: skip


@router.get(
    "/orgs/{org}/resources", response_model=list[schemas.ResourcePublic], tags=["resources"]
)
def list_resources(
    org: str, rt: Rt, credential: CurrentCredential, kind: ResourceKind | None = None
) -> list[schemas.ResourcePublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        return [
            resource_public(db, found, r) for r in resources.visible(db, principal, found, kind)
        ]


@router.post(
    "/orgs/{org}/resources",
    status_code=201,
    response_model=schemas.ResourcePublic,
    tags=["resources"],
)
def create_resource(
    org: str, body: schemas.ResourceCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.ResourcePublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.create(
            db,
            actor_of(request, rt, credential),
            principal,
            found,
            body.kind,
            body.name,
            body.visibility,
            body.team,
            body.description,
        )
        return resource_public(db, found, row)


@router.get(
    "/orgs/{org}/resources/{kind}/{name}", response_model=schemas.ResourcePublic, tags=["resources"]
)
def get_resource(
    org: str, kind: str, name: str, rt: Rt, credential: CurrentCredential
) -> schemas.ResourcePublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.get(db, found, resources.parse_kind(kind), name)
        require(principal, Action.READ, resources.target_of(row))
        return resource_public(db, found, row)


@router.patch(
    "/orgs/{org}/resources/{kind}/{name}", response_model=schemas.ResourcePublic, tags=["resources"]
)
def update_resource(
    org: str,
    kind: str,
    name: str,
    body: schemas.ResourceUpdate,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> schemas.ResourcePublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.get(db, found, resources.parse_kind(kind), name)
        changes = body.model_dump(exclude_unset=True)
        team = {"team_name": changes["team"]} if "team" in changes else {}
        resources.update(
            db,
            actor_of(request, rt, credential),
            principal,
            found,
            row,
            visibility=body.visibility,
            description=body.description,
            **team,
        )
        return resource_public(db, found, row)


@router.delete("/orgs/{org}/resources/{kind}/{name}", status_code=204, tags=["resources"])
def delete_resource(
    org: str, kind: str, name: str, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.get(db, found, resources.parse_kind(kind), name)
        resources.delete(db, actor_of(request, rt, credential), principal, found, row)
    return Response(status_code=204)


# -- audit ------------------------------------------------------------------


def _audit_filter(
    org_id: int,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> audit.AuditFilter:
    return audit.AuditFilter(
        org_id=org_id,
        actor=actor,
        action=action,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )


@router.get("/orgs/{org}/audit", response_model=schemas.AuditPage, tags=["audit"])
def list_audit(
    org: str, rt: Rt, credential: CurrentCredential,
    actor: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: datetime | None = None, until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> schemas.AuditPage:  # fmt: skip
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        events = audit.query(
            db, _audit_filter(found.id, actor, action, since, until, before_id, limit)
        )
        page = [schemas.AuditEventPublic(**audit.event_json(e)) for e in events]
        return schemas.AuditPage(
            events=page, next_before_id=events[-1].id if len(events) == limit else None
        )


@router.get("/orgs/{org}/audit/export", tags=["audit"], response_class=StreamingResponse)
def export_audit(
    org: str, rt: Rt, credential: CurrentCredential,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: datetime | None = None, until: datetime | None = None,
) -> StreamingResponse:  # fmt: skip
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
    where = _audit_filter(found.id, None, action, since, until, None, 500)
    return StreamingResponse(_jsonl(rt, where), media_type="application/x-ndjson")


def _jsonl(rt: Runtime, where: audit.AuditFilter) -> Iterator[bytes]:
    with rt.db.sessions() as db:
        for event in audit.iter_all(db, where):
            yield json.dumps(audit.event_json(event)).encode() + b"\n"
