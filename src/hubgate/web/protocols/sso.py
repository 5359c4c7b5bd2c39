"""SSO routes: SP metadata, starting a sign-in, and the SAML assertion consumer.

The ACS is a cross-site POST from the IdP by design: no CSRF token, the
browser binding of the pending request stands in for it.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.datastructures import QueryParams
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from hubgate.principals import Credential
from hubgate.runtime import Runtime
from hubgate.sso import connections, invitations, login, routing
from hubgate.sso.flows import oidc as oidc_flow
from hubgate.sso.flows import saml as saml_flow
from hubgate.sso.flows import signin, started
from hubgate.sso.identity import Identity
from hubgate.sso.saml.metadata import sp_metadata
from hubgate.sso.states import ConnectionKind
from hubgate.web.context import CurrentCredential, Rt, actor_of
from hubgate.web.direct import DirectRoute, Served, serve_endpoint
from hubgate.web.pages.kit import render, safe_next
from hubgate.web.schemas import MAX_ROW_ID, RowId
from hubgate.web.session_cookie import BROWSER_COOKIE, set_browser_cookie, set_session_cookie
from hubgate.web.threads import in_steps

__all__ = ["DIRECT", "router"]

OptionalRowId = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]

router = APIRouter(tags=["sso"])
_MAX_FORM_FIELD = 512 * 1024


@router.get("/sso/saml/{connection_id}/metadata")
def saml_metadata(connection_id: RowId, rt: Rt) -> Response:
    with rt.db.transaction() as db:
        config = connections.saml_config(rt, connections.saml_endpoint(db, connection_id))
    document = sp_metadata(
        config.sp_entity_id, config.acs_url, config.sp_certificate,
        want_assertions_signed=config.want_assertions_signed,
        authn_requests_signed=config.sign_authn_requests, slo_url=config.slo_url,
    )  # fmt: skip
    return Response(document, media_type="application/samlmetadata+xml")


_MAX_ADDRESS = 320
Address = Annotated[str, Query(max_length=_MAX_ADDRESS)]


@router.get("/sso/{org}/start")
def start(
    org: str,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    next: str = "/",
    connection: OptionalRowId = None,
    email: Address = "",
) -> Response:
    """Send the browser to the org's identity provider; with several active
    connections and nothing to pick one by, a page asks which (:func:`_choice`)."""
    next_path = safe_next(next)

    def found(db: Session) -> _Found:
        org_id, endpoints = connections.named_org_endpoints(db, org)
        return org_id, org, endpoints, next_path

    asked = _Asked(connection, email, f"/sso/{org}/start", {"next": next_path}, only_active=False)
    return _start(request, rt, credential, found, asked, joining=False)


@router.get("/sso/join/{key}")
def join(
    key: str,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    connection: OptionalRowId = None,
    email: Address = "",
) -> Response:
    """The org's join link: SSO, then membership with the default role."""

    def found(db: Session) -> _Found:
        joined = invitations.join_org(db, key[:256], rt.now())
        return joined.id, joined.name, connections.org_endpoints(db, joined.id), f"/{joined.name}"

    asked = _Asked(connection, email, f"/sso/join/{quote(key[:256], safe='')}", {})
    return _start(request, rt, credential, found, asked, joining=True)


@router.get("/sso/invite/{key}")
def invited(
    key: str,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    connection: OptionalRowId = None,
    email: Address = "",
) -> Response:
    """An invitation's link: it starts the org's SSO and nothing more. The sign-in
    accepts the invitation only for the person whose verified address it names
    (:func:`hubgate.sso.login.admission`); anyone else is admitted or refused as
    they would be without the link, and the invitation stays."""

    def found(db: Session) -> _Found:
        org = invitations.invitation_org(db, key[:256], rt.now())
        return org.id, org.name, connections.org_endpoints(db, org.id), f"/{org.name}"

    asked = _Asked(connection, email, f"/sso/invite/{quote(key[:256], safe='')}", {})
    return _start(request, rt, credential, found, asked, joining=False)


_Found = tuple[int, str, list[connections.Endpoint], str]
"""The org's id and name, its connections that are not inactive, and where to go after."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Asked:
    """What the visitor asked for: a connection by id, or the one serving an email's
    domain; ``here`` and ``kept`` rebuild the address the choice page links back to
    (so a join or an invitation still happens after the chosen IdP answers).
    ``only_active``: the connection asked for must be one of the org's active ones
    (join and invitation links; ``/sso/{org}/start`` also runs test sign-ins)."""

    connection: int | None
    email: str
    here: str
    kept: dict[str, str]
    only_active: bool = True

    def link(self, connection_id: int) -> str:
        return f"{self.here}?{urlencode({'connection': connection_id, **self.kept})}"


def _start(
    request: Request,
    rt: Runtime,
    credential: Credential,
    find: Callable[[Session], _Found],
    asked: _Asked,
    *,
    joining: bool,
) -> Response:
    """The org (and where to go after) that ``find`` names, its connection, and the
    sign-in started there, in one transaction; or the page choosing the connection."""
    browser_key = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
    user_id = credential.user_id if credential.is_user else None
    with rt.db.transaction() as db:
        org_id, org_name, endpoints, next_path = find(db)
        chosen = _chosen(db, org_id, endpoints, asked, user_id)
        if isinstance(chosen, routing.Choice):
            return _choice(request, rt, org_name, chosen, asked)
        begun = started.Started(user_id, credential.session_id, org_id if joining else None)
        if chosen.kind == ConnectionKind.OIDC:
            url = oidc_flow.start(db, rt, chosen, next_path, browser_key, begun)
        else:
            url = saml_flow.start(db, rt, chosen, next_path, browser_key)
            started.remember(db, browser_key, org_id, begun)
    response = RedirectResponse(url, status_code=303)
    set_browser_cookie(response, rt, browser_key)
    return response


def _chosen(
    db: Session, org_id: int, endpoints: list[connections.Endpoint], asked: _Asked,
    user_id: int | None,
) -> connections.Endpoint | routing.Choice:  # fmt: skip
    """The connection asked for (only an active one, when ``asked.only_active``),
    else routing's pick; a choice that the email's domain settles is settled."""
    if asked.connection is not None and asked.only_active:
        return routing.offered(endpoints, asked.connection)
    chosen = routing.connection_for(db, org_id, endpoints, asked.connection, user_id)
    if isinstance(chosen, routing.Choice) and asked.email:
        serving = routing.serving_address(db, org_id, asked.email)
        return next((c for c in chosen.options if c.id == serving), chosen)
    return chosen


def _choice(
    request: Request, rt: Runtime, org_name: str, choice: routing.Choice, asked: _Asked
) -> Response:
    """A plain page (no script): an email form that routes by its domain, and the
    org's active connections by display name, each a link that starts it."""
    options = [{"name": c.name, "href": asked.link(c.id)} for c in choice.options]
    context = {
        "org_name": org_name, "options": options, "action": asked.here, "kept": asked.kept,
        "email": asked.email, "unrouted": bool(asked.email),
    }  # fmt: skip
    return render(request, rt, "sso_choice.html", context)


@router.post("/sso/saml/{connection_id}/acs")
def acs(
    connection_id: RowId,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    saml_response: Annotated[str, Form(alias="SAMLResponse", max_length=_MAX_FORM_FIELD)],
    relay_state: Annotated[str, Form(alias="RelayState", max_length=1024)] = "",
) -> Response:
    caller = _caller(request, rt, credential)
    outcome = signin.saml(rt, caller, connection_id, saml_response, relay_state)
    return _answer(request, rt, outcome)


@router.get("/sso/oidc/{connection_id}/callback")
async def oidc_callback(
    connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """The redirect URI: state first, then the provider's answer, then the tokens,
    each step on its own kind of thread (:mod:`hubgate.web.threads`)."""
    params = {k: v[:4096] for k, v in request.query_params.items()}
    caller = _caller(request, rt, credential)
    outcome = await in_steps(signin.OidcSignIn(rt, caller, connection_id, params))
    return _answer(request, rt, outcome)


def _caller(request: Request, rt: Runtime, credential: Credential) -> signin.Caller:
    return signin.Caller(
        actor_of(request, rt, credential), request.cookies.get(BROWSER_COOKIE, ""),
        request.headers.get("user-agent"),
    )  # fmt: skip


def _answer(request: Request, rt: Runtime, outcome: signin.Outcome) -> Response:
    """The session cookie and where to go next; a test sign-in shows the Identity."""
    signed = outcome.signed
    if signed is None:
        return _identity_response(request, rt, outcome.identity, outcome.next)
    next_path = _after_sign_in(signed, outcome.next)
    if "application/json" in request.headers.get("accept", ""):
        body = {"user_id": signed.user_id, "org": signed.org, "next": next_path,
                "created": signed.created, "linked": signed.linked}  # fmt: skip
        response: Response = JSONResponse(body)
    else:
        response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, rt, signed.cookie)
    return response


def _after_sign_in(signed: login.SignedIn, next_path: str) -> str:
    """A first link of an existing account that other identities, addresses or tokens
    reach shows them, each revocable, before going on to ``next``."""
    if not signed.review:
        return next_path
    return "/account/security?" + urlencode({"linked": signed.org, "next": next_path})


def _identity_response(
    request: Request, rt: Runtime, identity: Identity, next_path: str
) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        shown = dataclasses.asdict(identity)
        if shown["idp_session"] is not None:
            del shown["idp_session"]["id_token"]  # a credential at the IdP: never echoed
        body = jsonable_encoder({"identity": shown, "next": next_path})
        return JSONResponse(body)
    return render(request, rt, "sso_identity.html", {"identity": identity, "next": next_path})


# -- the sign-in's browser hops, served ahead of the framework (hubgate.web.direct) --

_PLAIN_ROW_ID = re.compile(r"[1-9][0-9]{0,9}")


def _row_id(value: str | None) -> int | None:
    """A row id written plainly (digits, no sign, no leading zero) and in range;
    ``None`` for anything else, which the framework's validation then judges."""
    if value is None or not _PLAIN_ROW_ID.fullmatch(value) or int(value) > MAX_ROW_ID:
        return None
    return int(value)


def _direct_start(request: Request) -> Served | None:
    query: QueryParams = request.query_params
    chosen, email = query.get("connection"), query.get("email", "")
    connection = _row_id(chosen)
    if (chosen is not None and connection is None) or len(email) > _MAX_ADDRESS:
        return None
    org, next_path = request.path_params["org"], query.get("next", "/")
    return serve_endpoint(
        request, start, org=org, next=next_path, connection=connection, email=email
    )


def _direct_callback(request: Request) -> Served | None:
    connection_id = _row_id(request.path_params["connection_id"])
    if connection_id is None:
        return None
    return serve_endpoint(request, oidc_callback, connection_id=connection_id)


def _route(endpoint: Callable[..., object]) -> APIRoute:
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


DIRECT = (
    DirectRoute(_route(start), _direct_start),
    DirectRoute(_route(oidc_callback), _direct_callback),
)
"""Starting a sign-in and the OIDC callback, each two lines of parameters away
from its endpoint above (the SAML ACS is a form POST, whose parsing is the
framework's)."""
