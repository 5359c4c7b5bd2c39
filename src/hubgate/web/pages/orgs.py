"""The home page, org pages and resource pages (``/{org}`` catch-alls: include last)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from hubgate import freshness
from hubgate.access import Action, Principal, ResourceKind, ResourceTarget, Visibility, decide
from hubgate.db.models import Org, Resource
from hubgate.errors import Forbidden, NotFound
from hubgate.gate import bindings
from hubgate.orgs import queries, resources, service
from hubgate.principals import Credential, require
from hubgate.runtime import Runtime
from hubgate.web.context import CurrentCredential, CurrentUser, Rt, actor_of
from hubgate.web.pages.kit import (
    FORM_ERRORS,
    SignedIn,
    org_context,
    org_scope,
    page_router,
    render,
    see_other,
)

__all__ = ["router"]

router = page_router()

KINDS = {kind.plural: kind for kind in ResourceKind}
TeamField = Annotated[str, Form(max_length=64)]
DISMISSED = "hubgate_sso_dismissed_"
Description = Annotated[str, Form(max_length=500)]


def _banner(
    request: Request, db: Session, org: Org, principal: Principal, credential: Credential
) -> str | None:
    """The SSO banner, unless this browser dismissed the optional one."""
    shown = freshness.banner(db, org.id, principal.sso, credential.user_id, credential.session_id)
    if shown == "optional" and request.cookies.get(f"{DISMISSED}{org.id}"):
        return None
    return shown


# -- home ---------------------------------------------------------------------------


def _home(
    request: Request, rt: Runtime, credential: Credential, status: int = 200, **extra: Any
) -> Response:
    if credential.session_id is None or credential.user_id is None:
        return render(request, rt, "landing.html", {})
    with rt.db.transaction() as db:
        orgs = [
            (org, role, teams, _sso_status(db, org, credential))
            for org, role, teams in queries.orgs_of(db, credential.user_id)
        ]
    return render(request, rt, "home.html", {"orgs": orgs, "now": rt.now(), **extra}, status)


def _sso_status(db: Session, org: Org, credential: Credential) -> freshness.SsoStatus:
    return freshness.sso_status(
        db, org.id, credential.kind, credential.user_id, credential.session_id
    )


@router.get("/")
def home(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return _home(request, rt, credential)


@router.post("/orgs/new")
def create_org(
    request: Request,
    rt: Rt,
    credential: SignedIn,
    user: CurrentUser,
    name: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    try:
        with rt.db.transaction() as db:
            org = service.create_org(
                db, actor_of(request, rt, credential), name, display_name or None, db.merge(user)
            )
    except (*FORM_ERRORS, Forbidden) as exc:
        form = {"name": name, "display_name": display_name}
        return _home(request, rt, credential, exc.status, error=exc.message, form=form)
    return see_other(f"/{org.name}")


# -- the org page -------------------------------------------------------------------


def _can_create(principal: Principal, org: Org, user_id: int | None) -> bool:
    """Whether to offer the form; resources.create decides for real."""
    probe = ResourceTarget(org.id, ResourceKind.MODEL, Visibility.PRIVATE, None, user_id)
    return decide(principal, Action.CREATE, probe).allowed


def _org_page(
    request: Request,
    rt: Runtime,
    credential: Credential,
    org_name: str,
    status: int = 200,
    **extra: Any,
) -> Response:
    with rt.db.transaction() as db:
        org, principal = org_scope(db, credential, org_name)
        context = org_context(org, principal, "resources")
        context["sso_banner"] = _banner(request, db, org, principal, credential)
        rows = resources.visible(db, principal, org, None)
        teams = queries.team_names(db, org.id) if context["can_read_org"] else {}
        can_create = _can_create(principal, org, credential.user_id)
    grouped = {kind: [r for r in rows if r.kind == kind.value] for kind in ResourceKind}
    context |= {"grouped": grouped, "teams": teams, "can_create": can_create, **extra}
    return render(request, rt, "org.html", context, status)


@router.get("/{org}")
def org_page(org: str, request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return _org_page(request, rt, credential, org)


@router.post("/{org}/sso-banner/dismiss")
def dismiss_banner(org: str, request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    """Hide the optional SSO banner of one org in this browser (for a day)."""
    with rt.db.transaction() as db:
        found = service.get_org(db, org)
    response = see_other(f"/{found.name}")
    response.set_cookie(
        f"{DISMISSED}{found.id}", "1", max_age=86400, httponly=True, samesite="lax",
        secure=rt.settings.secure_cookies, path=f"/{found.name}",
    )  # fmt: skip
    return response


@router.post("/{org}/resources/new")
def create_resource(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    kind: Annotated[ResourceKind, Form()],
    visibility: Annotated[Visibility, Form()],
    name: Annotated[str, Form(max_length=96)] = "",
    team: TeamField = "",
    description: Description = "",
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            row = resources.create(
                db, actor_of(request, rt, credential), principal, found, kind, name,
                visibility, team or None, description,
            )  # fmt: skip
    except FORM_ERRORS as exc:
        form = {"kind": kind.value, "name": name, "visibility": visibility.value, "team": team}
        form["description"] = description
        return _org_page(request, rt, credential, org, exc.status, error=exc.message, form=form)
    return see_other(_resource_url(org, row))


# -- resource pages -----------------------------------------------------------------


def _resource_url(org: str, row: Resource) -> str:
    return f"/{org}/{ResourceKind(row.kind).plural}/{row.name}"


def _kind(kinds: str) -> ResourceKind:
    if kinds not in KINDS:
        raise NotFound()
    return KINDS[kinds]


def _abilities(principal: Principal, target: ResourceTarget) -> dict[str, bool]:
    """Which forms to offer; the services decide for real."""
    return {
        f"can_{action.value}": decide(principal, action, target).allowed
        for action in (Action.WRITE, Action.ADMIN, Action.DELETE)
    }


@router.get("/{org}/{kinds}/{name}")
def resource_page(
    org: str, kinds: str, name: str, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    kind = _kind(kinds)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.get(db, found, kind, name)
        target = resources.target_of(row)
        require(principal, Action.READ, target)
        context = org_context(found, principal, "resources")
        context["sso_banner"] = _banner(request, db, found, principal, credential)
        teams = queries.team_names(db, found.id)
        context |= {"resource": row, "kind": kind, "teams": teams, **_abilities(principal, target)}
        if kind is ResourceKind.DEPLOYMENT:
            context["routes"] = bindings.routes_of(db, principal, row)
    context["team"] = teams.get(row.team_id) if row.team_id else None
    return render(request, rt, "resource.html", context)


@router.post("/{org}/{kinds}/{name}/settings")
def update_resource(
    org: str,
    kinds: str,
    name: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    edit_access: Annotated[bool, Form()] = False,
    visibility: Annotated[Visibility | None, Form()] = None,
    team: TeamField = "",
    edit_description: Annotated[bool, Form()] = False,
    description: Description = "",
) -> Response:
    """One form, two parts: visibility and team need ``admin``, the description ``write``."""
    kind = _kind(kinds)
    text = description if edit_description else None
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.get(db, found, kind, name)
        actor = actor_of(request, rt, credential)
        if edit_access:
            resources.update(
                db, actor, principal, found, row, visibility=visibility,
                team_name=team or None, description=text,
            )  # fmt: skip
        else:
            resources.update(db, actor, principal, found, row, description=text)
        url = _resource_url(org, row)
    return see_other(url)


@router.post("/{org}/{kinds}/{name}/delete")
def delete_resource(
    org: str, kinds: str, name: str, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    kind = _kind(kinds)
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        row = resources.get(db, found, kind, name)
        resources.delete(db, actor_of(request, rt, credential), principal, found, row)
    return see_other(f"/{org}")
