"""SSO connections in the JSON API (org admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from hubgate.access import Action, OrgTarget
from hubgate.errors import BadRequest, NotFound
from hubgate.principals import require
from hubgate.sso import connections
from hubgate.web.api import api_csrf
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId, Strict

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/orgs/{org}/sso", tags=["sso"], dependencies=[Depends(api_csrf)])


class SamlConnectionCreate(Strict):
    metadata_xml: Annotated[str | None, Field(max_length=512 * 1024)] = None
    metadata_url: Annotated[str | None, Field(max_length=2048)] = None
    allow_idp_initiated: bool = False


class ConnectionUpdate(Strict):
    want_assertions_signed: bool | None = None
    want_encrypted_assertions: bool | None = None
    sign_authn_requests: bool | None = None
    allow_idp_initiated: bool | None = None
    clock_skew_seconds: Annotated[int | None, Field(ge=0, le=600)] = None
    email_attributes: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None, Field(max_length=8)
    ] = None
    name_attributes: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None, Field(max_length=8)
    ] = None
    groups_attributes: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None, Field(max_length=8)
    ] = None
    add_idp_certificate: Annotated[str | None, Field(max_length=16384)] = None


def _connection(db: Any, org_id: int, connection_id: int) -> Any:
    row = connections.get(db, connection_id)
    if row.org_id != org_id:
        raise NotFound("No such SSO connection.")
    return row


@router.get("/connections")
def list_connections(org: str, rt: Rt, credential: CurrentCredential) -> list[dict[str, Any]]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        return [connections.describe(rt, c) for c in connections.of_org(db, found)]


@router.post("/connections", status_code=201)
def create_connection(
    org: str, body: SamlConnectionCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> dict[str, Any]:
    if (body.metadata_xml is None) == (body.metadata_url is None):
        raise BadRequest("Give exactly one of metadata_xml and metadata_url.")
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
    metadata = (
        body.metadata_xml.encode()
        if body.metadata_xml is not None
        else connections.load_metadata(rt, str(body.metadata_url))
    )
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.create_saml(
            db, rt, actor_of(request, rt, credential), principal, found, metadata,
            allow_idp_initiated=body.allow_idp_initiated,
        )  # fmt: skip
        return connections.describe(rt, row)


@router.patch("/connections/{connection_id}")
def update_connection(
    org: str, connection_id: RowId, body: ConnectionUpdate, request: Request, rt: Rt,
    credential: CurrentCredential,
) -> dict[str, Any]:  # fmt: skip
    changes = body.model_dump(exclude_none=True)
    certificate = changes.pop("add_idp_certificate", None)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = _connection(db, found.id, connection_id)
        actor = actor_of(request, rt, credential)
        if changes:
            connections.update_settings(db, actor, principal, row, changes)
        if certificate:
            connections.add_certificate(db, actor, principal, row, certificate)
        return connections.describe(rt, row)


@router.post("/connections/{connection_id}/rotate-sp-key")
def rotate_sp_key(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> dict[str, Any]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = _connection(db, found.id, connection_id)
        connections.rotate_sp_key(db, rt, actor_of(request, rt, credential), principal, row)
        return connections.describe(rt, row)
