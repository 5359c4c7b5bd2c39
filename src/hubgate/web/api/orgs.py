"""``/api/v1/orgs``: the caller's organizations; creating one."""

from __future__ import annotations

from fastapi import Request

from hubgate.access import (
    Action,
    OrgTarget,
    Scope,
    decide,
)
from hubgate.db.models import Org
from hubgate.errors import Forbidden
from hubgate.orgs import queries, service
from hubgate.principals import Credential
from hubgate.web import schemas
from hubgate.web.api.common import (
    api_router,
)
from hubgate.web.context import (
    CurrentCredential,
    CurrentUser,
    Rt,
    actor_of,
    org_scope,
)

__all__ = ["router"]

router = api_router()


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
