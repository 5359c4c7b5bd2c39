"""How people join an org, on its Members tab (admins): the join link (shown,
copied, rotated, its expiry set, disabled) and invitations (made, each with its
link to pass on, mailed again, revoked). Each form calls one service function
and comes back to the Members tab, with the outcome or the refusal shown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from hubgate.access import OrgRole, Principal
from hubgate.audit import Actor
from hubgate.db.models import Org
from hubgate.errors import BadRequest, Conflict, NotFound, TooManyRequests
from hubgate.principals import Credential
from hubgate.runtime import Runtime
from hubgate.sso import invitations
from hubgate.web.context import Rt, actor_of
from hubgate.web.pages.admin import show_members
from hubgate.web.pages.kit import OrgRoleName, SignedIn, org_scope, page_router, see_other

__all__ = ["router"]

router = page_router()
Email = Annotated[str, Form(max_length=320)]
Days = Annotated[int, Form(ge=0, le=365)]
# Refusals shown on the Members tab next to the forms; a caller who may not act
# gets the error page instead.
_SHOWN = (BadRequest, Conflict, NotFound, TooManyRequests)

Change = Callable[[Session, Actor, Principal, Org], None]


def _act(
    request: Request, rt: Runtime, credential: Credential, org: str, done: str, act: Change
) -> Response:
    """Run ``act`` in one transaction and come back to the Members tab, which says
    what was done (``done`` names one of its fixed sentences)."""
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            act(db, actor_of(request, rt, credential), principal, found)
    except _SHOWN as exc:
        return show_members(request, rt, credential, org, exc.status, error=exc.message)
    return see_other(f"/{org}/members?done={done}")


def _ttl(days: int) -> timedelta | None:
    return timedelta(days=days) if days else None


@router.post("/{org}/members/join-link")
def rotate_join_link(
    org: str, request: Request, rt: Rt, credential: SignedIn, expires_days: Days = 0
) -> Response:
    def act(db: Session, actor: Actor, principal: Principal, found: Org) -> None:
        invitations.rotate_join_link(db, rt, actor, principal, found, _ttl(expires_days))

    return _act(request, rt, credential, org, "join-rotated", act)


@router.post("/{org}/members/join-link/expiry")
def set_join_link_expiry(
    org: str, request: Request, rt: Rt, credential: SignedIn, expires_days: Days = 0
) -> Response:
    def act(db: Session, actor: Actor, principal: Principal, found: Org) -> None:
        invitations.set_join_link_expiry(db, rt, actor, principal, found, _ttl(expires_days))

    return _act(request, rt, credential, org, "join-expiry", act)


@router.post("/{org}/members/join-link/disable")
def disable_join_link(org: str, request: Request, rt: Rt, credential: SignedIn) -> Response:
    def act(db: Session, actor: Actor, principal: Principal, found: Org) -> None:
        invitations.disable_join_link(db, actor, principal, found)

    return _act(request, rt, credential, org, "join-disabled", act)


@router.post("/{org}/members/invitations")
def invite(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    email: Email = "",
    role: Annotated[OrgRoleName, Form()] = "write",
) -> Response:
    def act(db: Session, actor: Actor, principal: Principal, found: Org) -> None:
        invitations.invite(db, rt, actor, principal, found, email, OrgRole.parse(role))

    return _act(request, rt, credential, org, "invited", act)


@router.post("/{org}/members/invitations/resend")
def resend_invitation(
    org: str, request: Request, rt: Rt, credential: SignedIn, email: Email = ""
) -> Response:
    def act(db: Session, actor: Actor, principal: Principal, found: Org) -> None:
        invitations.resend(db, rt, actor, principal, found, email)

    return _act(request, rt, credential, org, "resent", act)


@router.post("/{org}/members/invitations/revoke")
def revoke_invitation(
    org: str, request: Request, rt: Rt, credential: SignedIn, email: Email = ""
) -> Response:
    def act(db: Session, actor: Actor, principal: Principal, found: Org) -> None:
        invitations.revoke(db, actor, principal, found, email)

    return _act(request, rt, credential, org, "revoked", act)
