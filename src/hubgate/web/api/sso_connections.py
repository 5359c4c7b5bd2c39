"""SSO connections in the JSON API (org admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body, Request
from pydantic import Discriminator, Field, StrictBool, Tag, TypeAdapter
from sqlalchemy.orm import Session

from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import BadRequest
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sso import (
    connection_admin,
    connection_certificates,
    connection_summary,
    connections,
)
from hubgate.sso.connection_admin import MAX_NAME
from hubgate.sso.oidc.config import TokenAuth
from hubgate.sso.oidc.errors import SettingInvalid
from hubgate.sso.oidc.settings import (
    MAX_CLAIM_LENGTH,
    MAX_CLIENT_ID,
    MAX_CLIENT_SECRET,
    MAX_ISSUER,
    MAX_SCOPE_LENGTH,
    MAX_SCOPES,
)
from hubgate.sso.states import ConnectionKind
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId, Strict
from hubgate.web.schemas.sso import ConnectionDeleted, ConnectionPublic
from hubgate.web.threads import on_network_thread

__all__ = ["router"]

router = api_router("/orgs/{org}/sso", ["sso"])


class SamlConnectionCreate(Strict):
    kind: Literal["saml"] = "saml"
    metadata_xml: Annotated[str | None, Field(max_length=512 * 1024)] = None
    metadata_url: Annotated[str | None, Field(max_length=2048)] = None
    allow_idp_initiated: bool = False


ConnectionName = Annotated[str | None, Field(min_length=1, max_length=MAX_NAME)]


class ConnectionUpdate(Strict):
    name: ConnectionName = None
    want_assertions_signed: bool | None = None
    want_encrypted_assertions: bool | None = None
    sign_authn_requests: bool | None = None
    allow_idp_initiated: bool | None = None
    single_logout: bool | None = None
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


ClientSecret = Annotated[str, Field(max_length=MAX_CLIENT_SECRET)]
ClientId = Annotated[str, Field(min_length=1, max_length=MAX_CLIENT_ID)]
ClaimName = Annotated[str | None, Field(min_length=1, max_length=MAX_CLAIM_LENGTH)]
Scopes = Annotated[
    list[Annotated[str, Field(max_length=MAX_SCOPE_LENGTH)]], Field(max_length=MAX_SCOPES)
]
Algorithms = Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=9)]


class OidcConnectionCreate(Strict):
    """An OIDC connection: the provider's discovery document is fetched from the issuer."""

    kind: Literal["oidc"]
    issuer: Annotated[str, Field(min_length=1, max_length=MAX_ISSUER)]
    client_id: ClientId
    client_secret: ClientSecret = ""
    token_auth: TokenAuth = TokenAuth.CLIENT_SECRET_BASIC


class OidcConnectionUpdate(Strict):
    """Each value is checked strictly (hubgate.sso.oidc.settings); the secret is write-only."""

    name: ConnectionName = None
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None
    token_auth: TokenAuth | None = None
    scopes: Scopes | None = None
    algorithms: Algorithms | None = None
    email_claim: ClaimName = None
    email_verified_claim: ClaimName = None
    name_claim: ClaimName = None
    groups_claim: ClaimName = None
    rp_logout: StrictBool | None = None


def _kind(value: Any) -> str | None:
    found = value.get("kind", "saml") if isinstance(value, dict) else getattr(value, "kind", None)
    return found if found in tuple(ConnectionKind) else None


ConnectionCreate = Annotated[
    Annotated[SamlConnectionCreate, Tag(ConnectionKind.SAML)]
    | Annotated[OidcConnectionCreate, Tag(ConnectionKind.OIDC)],
    Discriminator(_kind),
    Body(),
]


_PUBLIC: TypeAdapter[ConnectionPublic] = TypeAdapter(ConnectionPublic)


def public(rt: Runtime, row: SsoConnection) -> ConnectionPublic:
    """The connection as admins see it (``connection_summary.describe``), typed."""
    return _PUBLIC.validate_python(connection_summary.describe(rt, row))


@router.get("/connections", response_model=list[ConnectionPublic])
def list_connections(org: str, rt: Rt, credential: CurrentCredential) -> list[ConnectionPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        return [public(rt, c) for c in connections.of_org(db, found)]


@router.post("/connections", status_code=201, response_model=ConnectionPublic)
async def create_connection(
    org: str, body: ConnectionCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    """A SAML connection (from metadata), or with ``"kind": "oidc"`` an OIDC one; on
    a network thread, as it may fetch the IdP's metadata or discovery document."""
    return await on_network_thread(_create, org, body, request, rt, credential)


def _create(
    org: str, body: ConnectionCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    if isinstance(body, OidcConnectionCreate):
        return _create_oidc(org, body, request, rt, credential)
    return _create_saml(org, body, request, rt, credential)


def _create_saml(
    org: str, body: SamlConnectionCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    if (body.metadata_xml is None) == (body.metadata_url is None):
        raise BadRequest("Give exactly one of metadata_xml and metadata_url.")
    metadata = (
        body.metadata_xml.encode()
        if body.metadata_xml is not None
        else connections.load_metadata_for(
            rt, lambda db: org_scope(db, credential, org), str(body.metadata_url)
        )
    )
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.create_saml(
            db, rt, actor_of(request, rt, credential), principal, found, metadata,
            allow_idp_initiated=body.allow_idp_initiated,
            metadata_url=None if body.metadata_url is None else str(body.metadata_url),
        )  # fmt: skip
        return public(rt, row)


def _create_oidc(
    org: str, body: OidcConnectionCreate, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    provider = connections.discover_for(rt, lambda db: org_scope(db, credential, org), body.issuer)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.create_oidc(
            db, rt, actor_of(request, rt, credential), principal, found, issuer=body.issuer,
            client_id=body.client_id, client_secret=body.client_secret,
            token_auth=body.token_auth, provider=provider,
        )  # fmt: skip
        return public(rt, row)


@router.patch("/connections/{connection_id}", response_model=ConnectionPublic)
def update_connection(
    org: str, connection_id: RowId, body: ConnectionUpdate | OidcConnectionUpdate,
    request: Request, rt: Rt, credential: CurrentCredential,
) -> ConnectionPublic:  # fmt: skip
    """The display name; SAML flags, attribute names and certificates, or an OIDC
    connection's settings."""
    changes = body.model_dump(exclude_none=True)
    name = changes.pop("name", None)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.get(db, connection_id, org_id=found.id)
        actor = actor_of(request, rt, credential)
        if name is not None:
            connection_admin.rename(db, actor, principal, row, name)
        if isinstance(body, OidcConnectionUpdate) and (changes or name is None):
            connections.update_oidc(db, rt, actor, principal, row, changes)
        elif changes:
            _update_saml(db, actor, principal, row, changes)
        return public(rt, row)


@router.delete("/connections/{connection_id}", response_model=ConnectionDeleted)
def delete_connection(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionDeleted:
    """Delete a connection that is not active (``connection_active`` otherwise); the
    SSO links of the people who signed in through it go with it."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.get(db, connection_id, org_id=found.id)
        links = connection_admin.delete(db, actor_of(request, rt, credential), principal, row)
    return ConnectionDeleted(id=connection_id, links_removed=links)


def _update_saml(
    db: Session, actor: Actor, principal: Principal, row: SsoConnection, changes: dict[str, Any]
) -> None:
    if row.kind != ConnectionKind.SAML:
        raise SettingInvalid(f"'{next(iter(changes))}' is a setting of SAML connections.")
    certificate = changes.pop("add_idp_certificate", None)
    if changes:
        connections.update_settings(db, actor, principal, row, changes)
    if certificate:
        connection_certificates.add_certificate(db, actor, principal, row, certificate)


@router.post("/connections/{connection_id}/rotate-sp-key", response_model=ConnectionPublic)
def rotate_sp_key(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.get(db, connection_id, org_id=found.id)
        connection_certificates.rotate_sp_key(
            db, rt, actor_of(request, rt, credential), principal, row
        )
        return public(rt, row)
