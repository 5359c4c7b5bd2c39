"""What every page shares: rendering, the CSRF check on every form post, the
signed-in requirement, safe ``next`` redirects and the org scope of a request.

Pages hold no access rules: they ask :func:`hubgate.access.decide` only to decide
which forms to show, and the services (via :func:`hubgate.principals.require`)
enforce.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, object_session

from hubgate.access import ORG_ROLE_NAMES, TEAM_ROLE_NAMES, Action, OrgTarget, Principal, decide
from hubgate.db.models import Org, User
from hubgate.db.types import utcnow
from hubgate.errors import BadRequest, Conflict, NotFound, Unauthenticated
from hubgate.orgs import queries
from hubgate.principals import Credential
from hubgate.runtime import Runtime
from hubgate.sso.certificate_expiry import active_alarms
from hubgate.web import csrf
from hubgate.web.context import CurrentCredential, Rt, org_scope

__all__ = [
    "FORM_ERRORS",
    "OrgRoleName",
    "SignedIn",
    "TeamRoleName",
    "org_context",
    "org_scope",
    "page_router",
    "render",
    "safe_next",
    "see_other",
    "user_by_id",
    "viewer",
]

FORM_ERRORS = (BadRequest, Conflict)
"""Refusals a form shows next to its fields; others get the error page."""

if TYPE_CHECKING:
    OrgRoleName = str
    TeamRoleName = str
else:
    # Form fields that take one of the role names hubgate.access owns:
    # Literal[("read", ...)] is Literal["read", ...].
    OrgRoleName = Literal[ORG_ROLE_NAMES]
    TeamRoleName = Literal[TEAM_ROLE_NAMES]
_MAX_NEXT = 2048


def render(
    request: Request, rt: Runtime, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """Render ``template`` with the CSRF token and the signed-in viewer.

    Pages carry a CSRF token and often private data, so no cache keeps them, and
    their forms act for the viewer, so no other site may frame them (clickjacking;
    the Content-Security-Policy of :mod:`hubgate.web.security_headers` says so too).
    """
    values = {"csrf_token": csrf.token_for(request, rt), "viewer": viewer(request), **context}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, values, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    csrf.attach_cookie(request, response, rt)
    return response


def viewer(request: Request) -> str | None:
    """The signed-in person's email for the top bar (the credential dependency cached it)."""
    credential = getattr(request.state, "credential", None)
    if isinstance(credential, Credential) and credential.session_id is not None:
        return credential.label
    return None


def see_other(url: str) -> RedirectResponse:
    """Post/redirect/get: the browser follows with a GET."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """``value`` if it is a same-origin path (``/x``), else ``/``.

    Refuses ``//host`` and ``/\\host`` (browsers read both as another host), any
    scheme, backslashes, whitespace and control characters (browsers drop tabs
    and newlines, so ``/\\t/host`` would become ``//host``).
    """
    if not value or len(value) > _MAX_NEXT or not value.startswith("/"):
        return "/"
    if value.startswith("//") or "\\" in value or not value.isprintable():
        return "/"
    if any(c.isspace() for c in value):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(here, safe="")


async def verify_form_csrf(request: Request, rt: Rt) -> None:
    """Every state-changing page request carries ``csrf_token`` in its form."""
    if request.method in csrf.SAFE_METHODS:
        return
    form = await request.form()
    submitted = form.get("csrf_token")
    csrf.verify(request, rt, submitted if isinstance(submitted, str) else None)


class PageRoute(APIRoute):
    """A page: an anonymous visitor asked to sign in on a GET is sent to ``/login``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated as exc:
                if request.method != "GET" or exc.code != "sign_in_required":
                    raise
                return see_other(login_url(request))

        return page


def page_router() -> APIRouter:
    return APIRouter(
        include_in_schema=False,
        route_class=PageRoute,
        dependencies=[Depends(verify_form_csrf)],
    )


def get_signed_in(credential: CurrentCredential) -> Credential:
    """A browser session; pages do not act on bearer tokens."""
    if credential.session_id is None or credential.user_id is None:
        raise Unauthenticated()
    return credential


SignedIn = Annotated[Credential, Depends(get_signed_in)]


def org_context(org: Org, principal: Principal, tab: str) -> dict[str, Any]:
    """The org header: which tabs this viewer may open, for its admins a warning
    while an IdP certificate expires soon, and for those who may read
    the org, a warning while it has no active admin (``org`` is read in the page's
    transaction, whose session answers that)."""
    target = OrgTarget(org.id)
    can_read = decide(principal, Action.READ, target).allowed
    is_admin = decide(principal, Action.ADMIN, target).allowed
    db = object_session(org)
    return {
        "org": org,
        "tab": tab,
        "can_read_org": can_read,
        "is_admin": is_admin,
        "admin_gap": queries.admin_gap(db, org.id) if can_read and db is not None else None,
        "certificate_alarms": (
            active_alarms(db, utcnow(), org.id) if is_admin and db is not None else []
        ),
    }


def user_by_id(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No such person.")
    return user
