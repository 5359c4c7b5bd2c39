"""``/api/v1/orgs/{org}/members``: members and their org roles."""

from __future__ import annotations

from functools import partial

from fastapi import Request, Response
from sqlalchemy.orm import Session

from hubgate.access import (
    Action,
    OrgRole,
    OrgTarget,
)
from hubgate.db.models import Org
from hubgate.orgs import queries, service
from hubgate.principals import require
from hubgate.web import schemas
from hubgate.web.api.common import (
    api_router,
)
from hubgate.web.api.common import (
    user_by_email as _user_by_email,
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
        sign_in=row.sign_in,
        sso_connections=list(row.connections),
        has_password=row.has_password,
        external_collaborator=row.external_collaborator,
        scim_managed=row.scim_managed,
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
