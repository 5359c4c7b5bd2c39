"""SCIM settings in the JSON API (org admins): the org's SCIM tokens, and links
from SCIM Groups to teams (which makes those teams SCIM-managed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request, Response
from pydantic import Field

from hubgate.access import TeamRole
from hubgate.provisioning import groups, tokens
from hubgate.sso import policy
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId, Strict, TeamRoleName
from hubgate.web.schemas.scim import (
    GroupTeamPublic,
    GroupTeamsPublic,
    ScimTokenCreated,
    ScimTokenPublic,
)

__all__ = ["router"]

router = api_router("/orgs/{org}/scim", ["scim"])
GroupId = Annotated[str, PathParam(max_length=36)]


class TokenIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "SCIM"


class TeamLinkIn(Strict):
    team: Annotated[str, Field(min_length=1, max_length=64)]
    team_role: TeamRoleName


@router.get("/tokens", response_model=list[ScimTokenPublic])
def list_tokens(org: str, rt: Rt, credential: CurrentCredential) -> list[ScimTokenPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        return [
            ScimTokenPublic.model_validate(tokens.describe(row))
            for row in tokens.list_for(db, found)
        ]


@router.post("/tokens", status_code=201, response_model=ScimTokenCreated)
def create_token(
    org: str, body: TokenIn, request: Request, rt: Rt, credential: CurrentCredential
) -> ScimTokenCreated:
    """A SCIM token for the org's IdP, shown this once, with the base URL to give it."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row, secret = tokens.create(
            db, actor_of(request, rt, credential), principal, found, body.name
        )
        base = rt.url(f"/scim/v2/{found.name}")
        return ScimTokenCreated.model_validate(
            {**tokens.describe(row), "token": secret, "base_url": base}
        )


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    org: str, token_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        tokens.revoke(db, actor, principal, found, token_id, rt.now())
    return Response(status_code=204)


@router.put("/groups/{group_id}/teams", response_model=GroupTeamsPublic)
def link_teams(
    org: str,
    group_id: GroupId,
    body: Annotated[list[TeamLinkIn], Field(max_length=50)],
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> GroupTeamsPublic:
    """Replace the teams a SCIM Group places its members in; members are placed now."""
    links = [(link.team, TeamRole.parse(link.team_role)) for link in body]
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        groups.link_teams(db, actor_of(request, rt, credential), principal, found, group_id, links)
    teams = [GroupTeamPublic(team=t, team_role=r.label) for t, r in links]
    return GroupTeamsPublic(group=group_id, teams=teams)
