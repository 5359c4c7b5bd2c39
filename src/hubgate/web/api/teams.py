"""``/api/v1/orgs/{org}/teams``: teams, their members and team tokens."""

from __future__ import annotations

from functools import partial

from fastapi import Request, Response
from sqlalchemy.orm import Session

from hubgate.access import (
    Action,
    OrgTarget,
    TeamRole,
    TeamTarget,
)
from hubgate.db.models import Org
from hubgate.gate.usage_report import usage_of
from hubgate.orgs import queries, service, team_tokens
from hubgate.principals import require
from hubgate.web import schemas
from hubgate.web.api.common import (
    api_router,
    token_public,
    usage_public,
)
from hubgate.web.api.common import (
    created as _created,
)
from hubgate.web.api.common import (
    require_session as _require_session,
)
from hubgate.web.api.common import (
    user_by_id as _user_by_id,
)
from hubgate.web.context import (
    CurrentCredential,
    Rt,
    actor_of,
    org_scope,
)
from hubgate.web.schemas import RowId

__all__ = ["router"]

router = api_router()


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


@router.get(
    "/orgs/{org}/teams/{team}/tokens/{token_id}/usage",
    response_model=schemas.TokenUsagePublic,
    tags=["tokens"],
)
def team_token_usage(
    org: str, team: str, token_id: RowId, rt: Rt, credential: CurrentCredential
) -> schemas.TokenUsagePublic:
    """Calls to deployments by a team token, for whoever may list the team's tokens."""
    today = rt.now().date()
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = team_tokens.team_token(
            db, principal, found, service.get_team(db, found, team), token_id
        )
        return usage_public(usage_of(db, [row], today)[row.id], today)


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
