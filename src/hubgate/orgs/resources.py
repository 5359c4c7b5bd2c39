"""Resources: models, datasets, Spaces and deployments inside an org namespace."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, Principal, ResourceKind, ResourceTarget, Visibility, decide
from hubgate.audit import Actor
from hubgate.db.models import Org, Resource, Team
from hubgate.errors import BadRequest, Conflict, NotFound
from hubgate.names import check_resource_name, is_resource_name, is_slug
from hubgate.principals import require

__all__ = ["create", "delete", "get", "target_of", "update", "visible"]


def target_of(resource: Resource) -> ResourceTarget:
    return ResourceTarget(
        org_id=resource.org_id,
        kind=ResourceKind(resource.kind),
        visibility=Visibility(resource.visibility),
        team_id=resource.team_id,
        creator_id=resource.creator_id,
    )


def parse_kind(value: str) -> ResourceKind:
    singular = value.removesuffix("s")
    try:
        return ResourceKind(singular)
    except ValueError as exc:
        raise NotFound("Unknown resource kind.") from exc


def get(db: Session, org: Org, kind: ResourceKind, name: str) -> Resource:
    if not is_resource_name(name):
        raise NotFound()
    found = db.scalars(
        select(Resource).where(
            Resource.org_id == org.id, Resource.kind == kind.value, Resource.name == name
        )
    ).first()
    if found is None:
        raise NotFound()
    return found


def visible(
    db: Session, principal: Principal, org: Org, kind: ResourceKind | None
) -> list[Resource]:
    """The org's resources the principal may read, by kind then name."""
    statement = select(Resource).where(Resource.org_id == org.id)
    if kind is not None:
        statement = statement.where(Resource.kind == kind.value)
    rows = db.scalars(statement.order_by(Resource.kind, Resource.name))
    return [r for r in rows if decide(principal, Action.READ, target_of(r)).allowed]


def _team_of(db: Session, org: Org, name: str | None) -> Team | None:
    if name is None:
        return None
    team = None
    if is_slug(name):
        team = db.scalars(select(Team).where(Team.org_id == org.id, Team.name == name)).first()
    if team is None:
        raise BadRequest("No team by that name in this organization.", code="unknown_team")
    return team


def create(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    kind: ResourceKind,
    name: str,
    visibility: Visibility,
    team_name: str | None = None,
    description: str = "",
) -> Resource:
    team = _team_of(db, org, team_name)
    proposed = ResourceTarget(org.id, kind, visibility, team.id if team else None, actor.user_id)
    require(principal, Action.CREATE, proposed)
    resource = Resource(
        org_id=org.id, kind=kind.value, name=check_resource_name(name),
        visibility=visibility.value, team_id=proposed.team_id, creator_id=actor.user_id,
        description=_description(description),
    )  # fmt: skip
    db.add(resource)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict(f"A {kind.value} by that name exists.", code="name_taken") from exc
    audit.record(
        db, actor, "resource.created", org_id=org.id, target=f"{kind.value}/{name}",
        data={"visibility": visibility.value, "team": team_name},
    )  # fmt: skip
    return resource


def _description(value: str) -> str:
    if len(value) > 500:
        raise BadRequest("Descriptions are up to 500 characters.", code="invalid_description")
    return value


_UNSET = object()


def update(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    resource: Resource,
    *,
    visibility: Visibility | None = None,
    team_name: str | None | object = _UNSET,
    description: str | None = None,
) -> Resource:
    """Change settings: visibility and team need ``admin`` on the resource, text ``write``."""
    target = target_of(resource)
    changes: dict[str, object] = {}
    if visibility is not None or team_name is not _UNSET:
        require(principal, Action.ADMIN, target)
    elif description is not None:
        require(principal, Action.WRITE, target)
    if visibility is not None and visibility.value != resource.visibility:
        changes["visibility"] = {"from": resource.visibility, "to": visibility.value}
        resource.visibility = visibility.value
    if team_name is not _UNSET:
        team = _team_of(db, org, team_name if isinstance(team_name, str) else None)
        changes["team"] = {"to": team.name if team else None}
        resource.team_id = team.id if team else None
    if description is not None:
        resource.description = _description(description)
    audit.record(
        db, actor, "resource.updated", org_id=org.id,
        target=f"{resource.kind}/{resource.name}", data=changes,
    )  # fmt: skip
    return resource


def delete(db: Session, actor: Actor, principal: Principal, org: Org, resource: Resource) -> None:
    require(principal, Action.DELETE, target_of(resource))
    db.delete(resource)
    audit.record(
        db, actor, "resource.deleted", org_id=org.id, target=f"{resource.kind}/{resource.name}"
    )
