"""``/api/v1/orgs/{org}/resources``: models, datasets, Spaces and deployments."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.orm import Session

from hubgate.access import (
    Action,
    ResourceKind,
)
from hubgate.db.models import Org, Resource, Team
from hubgate.orgs import resources
from hubgate.principals import require
from hubgate.web import schemas
from hubgate.web.api.common import (
    api_router,
)
from hubgate.web.context import (
    CurrentCredential,
    Rt,
    actor_of,
    org_scope,
)

__all__ = ["router"]

router = api_router()


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
