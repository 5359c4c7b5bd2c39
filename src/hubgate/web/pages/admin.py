"""Org administration pages: members, teams with their tokens, and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BeforeValidator, Field
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgRole, OrgTarget, Principal, TeamRole, TeamTarget, decide
from hubgate.account_security import devices
from hubgate.account_security.refusals import raise_refused
from hubgate.accounts import tokens, users
from hubgate.accounts.emails import normalize_email
from hubgate.db.models import Org, Team, User
from hubgate.errors import BadRequest
from hubgate.gate.usage_report import usage_of
from hubgate.orgs import queries, service, team_tokens
from hubgate.principals import Credential, require
from hubgate.runtime import Runtime
from hubgate.sso import connections, invitations
from hubgate.streams import manage
from hubgate.web.context import CurrentCredential, Rt, actor_of
from hubgate.web.pages.kit import (
    FORM_ERRORS,
    OrgRoleName,
    SignedIn,
    TeamRoleName,
    org_context,
    org_scope,
    page_router,
    render,
    see_other,
    user_by_id,
)
from hubgate.web.schemas import MAX_ROW_ID, RowId

__all__ = ["router"]

router = page_router()
AUDIT_PAGE = 50


def _as_utc(at: datetime | None) -> datetime | None:
    """UTC, as the audit log keeps times: a time without an offset is taken as UTC."""
    if at is None or at.tzinfo is None:
        return None if at is None else at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 has no UTC time
        raise ValueError("out of range") from exc


def _blank_is_none(value: object) -> object:
    """The filter form sends its empty fields as ``name=``: no filter. Longer text
    than any time or id is refused before it is parsed."""
    if isinstance(value, str) and len(value) > 40:
        raise ValueError("too long")
    return None if value == "" else value


Blank = BeforeValidator(_blank_is_none)
ConnectionId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
# A period bound of the audit page; a bad one is refused with 422.
AuditTime = Annotated[datetime | None, Blank, AfterValidator(_as_utc)]
# What the Members tab says after a change (``?done=KEY``): fixed sentences, so a
# crafted link cannot put words of its own on the page.
DONE = {
    "join-rotated": "New join link ready: any earlier one stopped working.",
    "join-expiry": "Join link expiry set.",
    "join-disabled": "Join link disabled.",
    "invited": "Invitation made: the mail is on its way, and its link is below.",
    "resent": "Invitation mailed again.",
    "revoked": "Invitation revoked: its link stopped working.",
}


def _user_by_email(db: Session, address: str) -> User:
    user = users.find_by_email(db, normalize_email(address))
    if user is None:
        message = "No account has that email; ask them to sign up first."
        raise BadRequest(message, code="unknown_email")
    return user


# -- members ------------------------------------------------------------------------


def show_members(
    request: Request, rt: Runtime, credential: Credential, org: str, status: int = 200, **extra: Any
) -> Response:
    """The Members tab: every member with how they sign in and where their role
    comes from; for admins also the join link and the pending invitations."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.READ, OrgTarget(found.id))
        context = org_context(found, principal, "members")
        context["members"] = queries.members_of(db, found)
        if context["is_admin"]:
            context |= _joining(db, rt, principal, found)
    done = request.query_params.get("done", "") if status == 200 else ""
    context["done"] = DONE.get(done, "")
    return render(request, rt, "members.html", context | extra, status)


def _joining(db: Session, rt: Runtime, principal: Principal, org: Org) -> dict[str, Any]:
    """What the Members tab shows its admins about joining the org."""
    rows = invitations.list_for(db, org, rt.now())
    return {
        "join_link": invitations.join_link(db, rt, principal, org),
        "join_action": f"/{org.name}/members/join-link",
        "invitations": invitations.describe_all(db, rt, rows),
        "sso_active": any(c.state == "active" for c in connections.of_org(db, org)),
    }


@router.get("/{org}/members")
def members_page(org: str, request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return show_members(request, rt, credential, org)


@router.post("/{org}/members/add")
def add_member(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[OrgRoleName, Form()] = "write",
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            actor = actor_of(request, rt, credential)
            # The service looks the person up once it checked the caller is an admin.
            by_email = partial(_user_by_email, db, email)
            service.add_member(db, actor, principal, found, by_email, OrgRole.parse(role))
    except FORM_ERRORS as exc:
        form = {"email": email, "role": role}
        return show_members(request, rt, credential, org, exc.status, error=exc.message, form=form)
    return see_other(f"/{org}/members")


@router.post("/{org}/members/{user_id}/role")
def set_member_role(
    org: str,
    user_id: RowId,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    role: Annotated[OrgRoleName, Form()],
    pin: Annotated[bool, Form()] = False,
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            actor = actor_of(request, rt, credential)
            person = partial(user_by_id, db, user_id)
            service.set_role(db, actor, principal, found, person, OrgRole.parse(role), pin=pin)
    except FORM_ERRORS as exc:
        return show_members(request, rt, credential, org, exc.status, error=exc.message)
    return see_other(f"/{org}/members")


@router.post("/{org}/members/{user_id}/unpin")
def unpin_member_role(
    org: str, user_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            person = partial(user_by_id, db, user_id)
            service.unpin(db, actor_of(request, rt, credential), principal, found, person)
    except FORM_ERRORS as exc:
        return show_members(request, rt, credential, org, exc.status, error=exc.message)
    return see_other(f"/{org}/members")


@router.post("/{org}/members/{user_id}/remove")
def remove_member(
    org: str, user_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            person = partial(user_by_id, db, user_id)
            service.remove_member(db, actor_of(request, rt, credential), principal, found, person)
    except FORM_ERRORS as exc:
        return show_members(request, rt, credential, org, exc.status, error=exc.message)
    return see_other(f"/{org}/members")


@router.post("/{org}/members/{user_id}/end-sessions")
def end_member_sessions(
    org: str, user_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    """End the member's sessions that hold an SSO authentication for the org."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        outcome = devices.end_member_sessions(
            db, actor_of(request, rt, credential), principal, found, user_id
        )
    raise_refused(outcome)
    return show_members(request, rt, credential, org, notice=f"{outcome} session(s) ended.")


# -- teams --------------------------------------------------------------------------


@router.get("/{org}/teams")
def teams_page(org: str, request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return _teams_page(request, rt, credential, org)


def _teams_page(
    request: Request, rt: Runtime, credential: Credential, org: str, status: int = 200, **extra: Any
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.READ, OrgTarget(found.id))
        context = org_context(found, principal, "teams")
        context |= {"teams": queries.teams_of(db, found), **extra}
    return render(request, rt, "teams.html", context, status)


@router.post("/{org}/teams/new")
def create_team(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    name: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            actor = actor_of(request, rt, credential)
            team = service.create_team(db, actor, principal, found, name, display_name or None)
    except FORM_ERRORS as exc:
        form = {"name": name, "display_name": display_name}
        return _teams_page(request, rt, credential, org, exc.status, error=exc.message, form=form)
    return see_other(f"/{org}/teams/{team.name}")


def _team_scope(
    db: Session, credential: Credential, org: str, team: str
) -> tuple[Org, Principal, Team]:
    """The team, once the viewer may see the org's teams (managing it is the
    service's to check)."""
    found, principal = org_scope(db, credential, org)
    require(principal, Action.READ, OrgTarget(found.id))
    return found, principal, service.get_team(db, found, team)


def _team_page(
    request: Request,
    rt: Runtime,
    credential: Credential,
    org: str,
    team: str,
    status: int = 200,
    **extra: Any,
) -> Response:
    with rt.db.transaction() as db:
        found, principal, row = _team_scope(db, credential, org, team)
        context = org_context(found, principal, "teams")
        can_manage = decide(principal, Action.ADMIN, TeamTarget(found.id, row.id)).allowed
        listed = next(t for t in queries.teams_of(db, found) if t.team.id == row.id)
        context |= {
            "team": row, "members": listed.members, "scim_groups": listed.scim_groups,
            "can_manage": can_manage,
        }  # fmt: skip
        if can_manage:
            context["org_members"] = queries.members_of(db, found)
            context["tokens"] = queries.team_tokens(db, row.id)
            context["usage"] = usage_of(db, context["tokens"], rt.now().date())
    context |= {"scopes": sorted(s.value for s in tokens.TEAM_SCOPES), **extra}
    return render(request, rt, "team.html", context, status)


@router.get("/{org}/teams/{team}")
def team_page(
    org: str, team: str, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    return _team_page(request, rt, credential, org, team)


@router.post("/{org}/teams/{team}/members")
def set_team_member(
    org: str,
    team: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    user_id: Annotated[int, Form()],
    role: Annotated[TeamRoleName, Form()] = "read",
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal, row = _team_scope(db, credential, org, team)
            service.set_team_member(
                db, actor_of(request, rt, credential), principal, found, row,
                partial(user_by_id, db, user_id), TeamRole.parse(role),
            )  # fmt: skip
    except FORM_ERRORS as exc:
        return _team_page(request, rt, credential, org, team, exc.status, error=exc.message)
    return see_other(f"/{org}/teams/{team}")


@router.post("/{org}/teams/{team}/members/{user_id}/remove")
def remove_team_member(
    org: str, team: str, user_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    with rt.db.transaction() as db:
        found, principal, row = _team_scope(db, credential, org, team)
        actor = actor_of(request, rt, credential)
        person = partial(user_by_id, db, user_id)
        service.remove_team_member(db, actor, principal, found, row, person)
    return see_other(f"/{org}/teams/{team}")


@router.post("/{org}/teams/{team}/delete")
def delete_team(org: str, team: str, request: Request, rt: Rt, credential: SignedIn) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal, row = _team_scope(db, credential, org, team)
            service.delete_team(db, actor_of(request, rt, credential), principal, found, row)
    except FORM_ERRORS as exc:
        return _team_page(request, rt, credential, org, team, exc.status, error=exc.message)
    return see_other(f"/{org}/teams")


@router.post("/{org}/teams/{team}/tokens")
def create_team_token(
    org: str,
    team: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    name: Annotated[str, Form(max_length=100)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[int | None, Form(ge=1, le=3650)] = None,
) -> Response:
    """Shows the new secret in this response only (no redirect: it is never shown again)."""
    try:
        with rt.db.transaction() as db:
            found, principal, row = _team_scope(db, credential, org, team)
            new = team_tokens.create(
                db, actor_of(request, rt, credential), principal, found, row, name,
                scopes or [], expires_in_days, rt.now(),
            )  # fmt: skip
    except FORM_ERRORS as exc:
        return _team_page(request, rt, credential, org, team, exc.status, error=exc.message)
    return _team_page(request, rt, credential, org, team, new_token=new)


@router.post("/{org}/teams/{team}/tokens/{token_id}/revoke")
def revoke_team_token(
    org: str, team: str, token_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    with rt.db.transaction() as db:
        found, principal, row = _team_scope(db, credential, org, team)
        team_tokens.revoke_team_token(
            db, actor_of(request, rt, credential), principal, found, row, token_id, rt.now()
        )
    return see_other(f"/{org}/teams/{team}")


# -- audit log ----------------------------------------------------------------------


@router.get("/{org}/audit")
def audit_page(
    org: str,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    actor: Annotated[str, Query(max_length=320)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    trace: Annotated[str, Query(max_length=32)] = "",
    reason: Annotated[str, Query(max_length=64)] = "",
    connection: Annotated[ConnectionId | None, Blank, Query()] = None,
    since: Annotated[AuditTime, Query()] = None,
    until: Annotated[AuditTime, Query()] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Response:
    """The org's audit log, newest first; the sign-in health chart links here with
    ``reason``, ``connection`` and a ``since``/``until`` period."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        require(principal, Action.ADMIN, OrgTarget(found.id))
        where = audit.AuditFilter(
            org_id=found.id, actor=actor or None, action=action or None,
            trace_id=trace.strip() or None, reason=reason or None, connection_id=connection,
            since=since, until=until, before_id=before_id, limit=AUDIT_PAGE,
        )  # fmt: skip
        events = audit.query(db, where)
        context = org_context(found, principal, "audit")
        context["streams"] = manage.list_streams(db, principal, found)
    older = events[-1].id if len(events) == AUDIT_PAGE else None
    context |= {
        "events": events, "actor": actor, "action": action, "trace": trace, "older": older,
        "reason": reason, "connection": connection or "",
        "since": since.isoformat() if since else "", "until": until.isoformat() if until else "",
    }  # fmt: skip
    return render(request, rt, "audit.html", context)
