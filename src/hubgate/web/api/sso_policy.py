"""An org's SSO policy in the JSON API (org admins): mode and enforcement, timeout
and defaults, role and team mappings with a preview, invitations, the join link,
external collaborators, ending a member's org sessions, connection activation.

Thin routes: a validated body, one service call in one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import Path as PathParam
from fastapi import Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from hubgate.access import OrgRole, Principal, TeamRole
from hubgate.accounts import users
from hubgate.db.models import Invitation, Org, User
from hubgate.errors import NotFound
from hubgate.provisioning import mappings as scim_mappings
from hubgate.runtime import Runtime
from hubgate.sso import (
    activation,
    connections,
    invitations,
    mappings,
    members,
    policy,
    setup,
)
from hubgate.web.api.common import api_router
from hubgate.web.api.sso_connections import public as connection_public
from hubgate.web.context import CurrentCredential, Rt, actor_of, org_scope
from hubgate.web.schemas import EndedPublic, OrgRoleName, RowId, Str, Strict, TeamRoleName
from hubgate.web.schemas.sso import (
    CollaboratorPublic,
    ConnectionPublic,
    InvitationPublic,
    JoinLinkPublic,
    MappingPreviewPublic,
    MappingsPublic,
    SetupLinkCreated,
    SetupLinkPublic,
    SsoPolicyPublic,
    SsoSettingsPublic,
)

__all__ = ["router"]

router = api_router("/orgs/{org}/sso", ["sso policy"])

Text256 = Annotated[str, Field(min_length=1, max_length=256)]
EmailPath = Annotated[str, PathParam(max_length=320)]


class SettingsUpdate(Strict):
    mode: Literal["off", "basic", "basic-optional", "managed"] | None = None
    enforced: bool | None = None
    session_timeout_seconds: Annotated[int | None, Field(ge=3600, le=90 * 24 * 3600)] = None
    default_role: OrgRoleName | None = None
    default_team: Annotated[str | None, Field(max_length=64)] = None


class RoleMappingIn(Strict):
    attribute: Text256
    value: Text256
    role: OrgRoleName


class TeamMappingIn(Strict):
    attribute: Text256
    value: Text256
    team: Annotated[str, Field(min_length=1, max_length=64)]
    team_role: TeamRoleName


class PreviewIn(Strict):
    groups: Annotated[list[Text256], Field(max_length=1000)] = []
    attributes: Annotated[dict[str, Annotated[list[Text256], Field(max_length=100)]], Field(
        max_length=100
    )] = {}  # fmt: skip


class InvitationIn(Strict):
    email: Str
    role: OrgRoleName = "write"
    teams: Annotated[dict[str, TeamRoleName], Field(max_length=50)] = {}


class JoinLinkIn(Strict):
    expires_in_seconds: Annotated[int | None, Field(ge=300, le=365 * 24 * 3600)] = None


class CollaboratorIn(Strict):
    external: bool


def _person(db: Session, email: str) -> User:
    user = users.find_by_email(db, email.strip().lower()[:254])
    if user is None:
        raise NotFound("No such person.")
    return user


@router.get("/settings", response_model=SsoSettingsPublic)
def get_settings(org: str, rt: Rt, credential: CurrentCredential) -> SsoSettingsPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        described = {**policy.describe(db, found), **mappings.describe(db, found.id)}
        return SsoSettingsPublic.model_validate(described)


@router.patch("/settings", response_model=SsoPolicyPublic)
def update_settings(
    org: str, body: SettingsUpdate, request: Request, rt: Rt, credential: CurrentCredential
) -> SsoPolicyPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        actor = actor_of(request, rt, credential)
        if body.mode is not None:
            policy.set_mode(db, rt, actor, principal, found, body.mode)
        if body.enforced is not None:
            policy.set_enforcement(db, rt, actor, principal, found, body.enforced)
        if {"session_timeout_seconds", "default_role", "default_team"} & body.model_fields_set:
            policy.update_defaults(
                db, rt, actor, principal, found,
                session_timeout=timedelta(seconds=body.session_timeout_seconds)
                if body.session_timeout_seconds else None,
                default_role=OrgRole.parse(body.default_role) if body.default_role else None,
                default_team=body.default_team,
            )  # fmt: skip
        return SsoPolicyPublic.model_validate(policy.describe(db, found))


@router.put("/role-mappings", response_model=MappingsPublic)
def set_role_mappings(
    org: str,
    body: Annotated[list[RoleMappingIn], Field(max_length=mappings.MAX_RULES)],
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> MappingsPublic:
    rules = [mappings.RoleRule(r.attribute, r.value, OrgRole.parse(r.role)) for r in body]
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        scim_mappings.set_role_mappings(
            db, actor_of(request, rt, credential), principal, found, rules
        )
        return MappingsPublic.model_validate(mappings.describe(db, found.id))


@router.put("/team-mappings", response_model=MappingsPublic)
def set_team_mappings(
    org: str,
    body: Annotated[list[TeamMappingIn], Field(max_length=mappings.MAX_RULES)],
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> MappingsPublic:
    rules = [(r.attribute, r.value, r.team, TeamRole.parse(r.team_role)) for r in body]
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        mappings.set_team_mappings(db, actor_of(request, rt, credential), principal, found, rules)
        return MappingsPublic.model_validate(mappings.describe(db, found.id))


@router.post("/mappings/preview", response_model=MappingPreviewPublic)
def preview_mappings(
    org: str, body: PreviewIn, rt: Rt, credential: CurrentCredential
) -> MappingPreviewPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        grants = mappings.preview(db, found.id, body.groups, body.attributes, pins=True)
        return MappingPreviewPublic.model_validate(grants)


def _invitation(db: Session, rt: Runtime, row: Invitation) -> InvitationPublic:
    return InvitationPublic.model_validate(invitations.describe(db, rt, row))


@router.get("/invitations", response_model=list[InvitationPublic])
def list_invitations(org: str, rt: Rt, credential: CurrentCredential) -> list[InvitationPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        rows = invitations.describe_all(db, rt, invitations.list_for(db, found, rt.now()))
        return [InvitationPublic.model_validate(row) for row in rows]


@router.post("/invitations", status_code=201, response_model=InvitationPublic)
def invite(
    org: str, body: InvitationIn, request: Request, rt: Rt, credential: CurrentCredential
) -> InvitationPublic:
    teams = [(name, TeamRole.parse(role)) for name, role in body.teams.items()]
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = invitations.invite(
            db, rt, actor_of(request, rt, credential), principal, found, body.email,
            OrgRole.parse(body.role), teams,
        )  # fmt: skip
        return _invitation(db, rt, row)


@router.post("/invitations/{email}/resend", response_model=InvitationPublic)
def resend_invitation(
    org: str, email: EmailPath, request: Request, rt: Rt, credential: CurrentCredential
) -> InvitationPublic:
    """Mail the pending invitation again, its expiry renewed (at most once a minute)."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        return _invitation(db, rt, invitations.resend(db, rt, actor, principal, found, email))


@router.delete("/invitations/{email}", status_code=204)
def revoke_invitation(
    org: str, email: EmailPath, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        invitations.revoke(db, actor_of(request, rt, credential), principal, found, email)
    return Response(status_code=204)


def _join_link(db: Session, rt: Runtime, principal: Principal, org: Org) -> JoinLinkPublic:
    return JoinLinkPublic.model_validate(invitations.join_link(db, rt, principal, org).public())


def _ttl(seconds: int | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds else None


@router.get("/join-link", response_model=JoinLinkPublic)
def get_join_link(org: str, rt: Rt, credential: CurrentCredential) -> JoinLinkPublic:
    """The org's join link, its state and expiry."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        return _join_link(db, rt, principal, found)


@router.post("/join-link", response_model=JoinLinkPublic)
def rotate_join_link(
    org: str, body: JoinLinkIn, request: Request, rt: Rt, credential: CurrentCredential
) -> JoinLinkPublic:
    """A new join link; the old one stops working at once."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        invitations.rotate_join_link(db, rt, actor, principal, found, _ttl(body.expires_in_seconds))
        return _join_link(db, rt, principal, found)


@router.patch("/join-link", response_model=JoinLinkPublic)
def set_join_link_expiry(
    org: str, body: JoinLinkIn, request: Request, rt: Rt, credential: CurrentCredential
) -> JoinLinkPublic:
    """When the current join link ends (``null``: never); the link stays the same."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        invitations.set_join_link_expiry(
            db, rt, actor, principal, found, _ttl(body.expires_in_seconds)
        )
        return _join_link(db, rt, principal, found)


@router.delete("/join-link", status_code=204)
def disable_join_link(
    org: str, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        invitations.disable_join_link(db, actor_of(request, rt, credential), principal, found)
    return Response(status_code=204)


@router.put("/collaborators/{email}", response_model=CollaboratorPublic)
def set_collaborator(
    org: str,
    email: EmailPath,
    body: CollaboratorIn,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
) -> CollaboratorPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        user = _person(db, email)
        actor = actor_of(request, rt, credential)
        members.set_collaborator(db, actor, principal, found, user, body.external)
    return CollaboratorPublic(email=email, external_collaborator=body.external)


@router.post("/members/{email}/end-sessions", response_model=EndedPublic)
def end_sessions(
    org: str, email: EmailPath, request: Request, rt: Rt, credential: CurrentCredential
) -> EndedPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        user = _person(db, email)
        actor = actor_of(request, rt, credential)
        return EndedPublic(ended=members.end_org_sessions(db, actor, principal, found, user))


@router.post("/connections/{connection_id}/activate", response_model=ConnectionPublic)
def activate(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.get(db, connection_id, org_id=found.id)
        activation.activate(db, actor_of(request, rt, credential), principal, row)
        return connection_public(rt, row)


@router.post("/connections/{connection_id}/deactivate", response_model=ConnectionPublic)
def deactivate(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> ConnectionPublic:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = connections.get(db, connection_id, org_id=found.id)
        activation.deactivate(db, actor_of(request, rt, credential), principal, row)
        return connection_public(rt, row)


class SetupLinkIn(Strict):
    email: Str
    expires_in_seconds: Annotated[int, Field(ge=600, le=30 * 24 * 3600)] = 72 * 3600


@router.get("/setup-links", response_model=list[SetupLinkPublic])
def list_setup_links(org: str, rt: Rt, credential: CurrentCredential) -> list[SetupLinkPublic]:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        rows = setup.list_for(db, found, rt.now())
        return [SetupLinkPublic.model_validate(setup.describe(row)) for row in rows]


@router.post("/setup-links", status_code=201, response_model=SetupLinkCreated)
def create_setup_link(
    org: str, body: SetupLinkIn, request: Request, rt: Rt, credential: CurrentCredential
) -> SetupLinkCreated:
    """A setup portal link for the org's IT admin, shown once."""
    ttl = timedelta(seconds=body.expires_in_seconds)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        actor = actor_of(request, rt, credential)
        row, key = setup.create(db, rt, actor, principal, found, body.email, ttl)
        url = rt.url(f"/setup/{key}")
        return SetupLinkCreated.model_validate({**setup.describe(row), "url": url})


@router.delete("/setup-links/{link_id}", status_code=204)
def revoke_setup_link(
    org: str, link_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        setup.revoke(db, rt, actor_of(request, rt, credential), principal, found, link_id)
    return Response(status_code=204)
