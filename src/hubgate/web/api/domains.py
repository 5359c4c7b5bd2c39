"""An org's email domains in the JSON API (org admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response
from pydantic import Field

from hubgate.access import Action, OrgTarget
from hubgate.db.models import OrgDomain
from hubgate.principals import require
from hubgate.sso import domains
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import MAX_ROW_ID, Strict
from hubgate.web.schemas.domains import DomainPublic
from hubgate.web.threads import on_network_thread

__all__ = ["router"]

router = api_router("/orgs/{org}/domains", ["domains"])
_DOMAIN_LENGTH = 300  # room for a Unicode name whose IDNA form fits in 253
DomainName = Annotated[str, Path(min_length=1, max_length=_DOMAIN_LENGTH)]


class DomainCreate(Strict):
    domain: Annotated[str, Field(min_length=1, max_length=_DOMAIN_LENGTH)]


class DomainConnection(Strict):
    connection_id: Annotated[int | None, Field(ge=1, le=MAX_ROW_ID)]


def _public(row: OrgDomain) -> DomainPublic:
    return DomainPublic.model_validate(domains.describe(row))


@router.get("", response_model=list[DomainPublic])
def list_domains(org: str, rt: Rt, credential: CurrentCredential) -> list[DomainPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        return [_public(row) for row in domains.list_for(db, found)]


@router.post("", status_code=201, response_model=DomainPublic)
def add_domain(
    org: str, body: DomainCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> DomainPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        return _public(domains.add(db, rt, actor, principal, found, body.domain))


@router.post("/{domain}/verify", response_model=DomainPublic)
async def verify_domain(
    org: str, domain: DomainName, request: Request, rt: Rt, credential: CurrentCredential
) -> DomainPublic:
    """Look up the TXT record at ``_hubgate.<domain>`` now (no transaction open
    meanwhile, on a network thread: :mod:`hubgate.web.threads`)."""
    return await on_network_thread(_verify, org, domain, request, rt, credential)


def _verify(
    org: str, domain: DomainName, request: Request, rt: Rt, credential: CurrentCredential
) -> DomainPublic:
    actor = actor_of(request, rt, credential)
    row = domains.verify_dns(rt, actor, lambda db: org_scope(db, credential, org), domain)
    return _public(row)


@router.put("/{domain}/connection", response_model=DomainPublic)
def set_connection(
    org: str,
    domain: DomainName,
    body: DomainConnection,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> DomainPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = domains.assign_connection(
            db, actor_of(request, rt, credential), principal, found, domain, body.connection_id
        )
        return _public(row)


@router.delete("/{domain}", status_code=204)
def remove_domain(
    org: str, domain: DomainName, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        domains.remove(db, actor_of(request, rt, credential), principal, found, domain)
    return Response(status_code=204)
