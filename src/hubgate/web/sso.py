"""SSO routes: SP metadata, starting a sign-in, and the SAML assertion consumer.

The ACS is a cross-site POST from the IdP by design: no CSRF token, the
browser binding of the pending request stands in for it.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubgate import audit, metrics
from hubgate.db.models import Org, SsoConnection
from hubgate.errors import BadRequest, HubgateError, NotFound
from hubgate.orgs import service
from hubgate.runtime import Runtime
from hubgate.sso import connections, oidc_flow, saml_flow
from hubgate.sso.identity import Identity
from hubgate.sso.saml.metadata import sp_metadata
from hubgate.web.context import CurrentCredential, Rt, actor_of
from hubgate.web.pages_kit import render, safe_next
from hubgate.web.schemas import MAX_ROW_ID, RowId

__all__ = ["router"]

OptionalRowId = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]

router = APIRouter(tags=["sso"])
BROWSER_COOKIE = "hubgate_sso_browser"
_MAX_FORM_FIELD = 512 * 1024


@router.get("/sso/saml/{connection_id}/metadata")
def saml_metadata(connection_id: RowId, rt: Rt) -> Response:
    with rt.db.transaction() as db:
        connection = _saml(db, connection_id)
        config = connections.saml_config(rt, connection)
    document = sp_metadata(
        config.sp_entity_id, config.acs_url, config.sp_certificate,
        want_assertions_signed=config.want_assertions_signed,
        authn_requests_signed=config.sign_authn_requests,
    )  # fmt: skip
    return Response(document, media_type="application/samlmetadata+xml")


@router.get("/sso/{org}/start")
def start(
    org: str, request: Request, rt: Rt, next: str = "/", connection: OptionalRowId = None
) -> Response:
    """Send the browser to the org's identity provider."""
    browser_key = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
    with rt.db.transaction() as db:
        found = service.get_org(db, org)
        chosen = _connection_for(db, found, connection)
        flow = oidc_flow if chosen.kind == "oidc" else saml_flow
        url = flow.start(db, rt, chosen, safe_next(next), browser_key)
    response = RedirectResponse(url, status_code=303)
    _set_browser_cookie(response, rt, browser_key)
    return response


@router.post("/sso/saml/{connection_id}/acs")
def acs(
    connection_id: RowId,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    saml_response: Annotated[str, Form(alias="SAMLResponse", max_length=_MAX_FORM_FIELD)],
    relay_state: Annotated[str, Form(alias="RelayState", max_length=1024)] = "",
) -> Response:
    actor = actor_of(request, rt, credential)
    browser_key = request.cookies.get(BROWSER_COOKIE, "")
    try:
        with rt.db.transaction() as db:
            connection = _saml(db, connection_id)
            result = saml_flow.finish(
                db, rt, actor, connection, saml_response, relay_state, browser_key
            )
    except HubgateError as exc:
        _record_refusal(rt, actor, connection_id, exc)
        raise
    metrics.SIGN_INS.labels("saml", "identity_verified").inc()
    return _identity_response(request, rt, result.identity, result.next)


@router.get("/sso/oidc/{connection_id}/callback")
def oidc_callback(
    connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """The redirect URI: state first, then the provider's answer, then the tokens."""
    actor = actor_of(request, rt, credential)
    params = {k: v[:4096] for k, v in request.query_params.items()}
    browser_key = request.cookies.get(BROWSER_COOKIE, "")
    try:
        with rt.db.transaction() as db:
            connection = _of_kind(db, connection_id, "oidc")
            result = oidc_flow.finish(db, rt, actor, connection, params, browser_key)
    except HubgateError as exc:
        _record_refusal(rt, actor, connection_id, exc)
        raise
    metrics.SIGN_INS.labels("oidc", "identity_verified").inc()
    return _identity_response(request, rt, result.identity, result.next)


def _saml(db: Session, connection_id: int) -> SsoConnection:
    return _of_kind(db, connection_id, "saml")


def _of_kind(db: Session, connection_id: int, kind: str) -> SsoConnection:
    connection = connections.get(db, connection_id)
    if connection.kind != kind or connection.state == "inactive":
        raise NotFound(f"No such {kind.upper()} connection.")
    return connection


def _connection_for(db: Session, org: Org, wanted: int | None) -> SsoConnection:
    found = [c for c in connections.of_org(db, org) if c.state != "inactive"]
    if wanted is not None:
        found = [c for c in found if c.id == wanted]
    if len(found) != 1:
        raise BadRequest(
            "This organization has no single SSO connection to sign in with.",
            code="sso_not_configured",
        )
    return found[0]


def _record_refusal(rt: Runtime, actor: audit.Actor, connection_id: int, exc: HubgateError) -> None:
    """The refusal is audited in its own transaction: the sign-in's own rolled back."""
    metrics.SIGN_INS.labels("sso", exc.code).inc()
    with rt.db.transaction() as db:
        connection = db.get(SsoConnection, connection_id)
        audit.record(
            db, actor, "sso.login_refused", org_id=connection.org_id if connection else None,
            target=f"connection:{connection_id}", reason=exc.code,
        )  # fmt: skip


def _identity_response(
    request: Request, rt: Runtime, identity: Identity, next_path: str
) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        body = jsonable_encoder({"identity": dataclasses.asdict(identity), "next": next_path})
        return JSONResponse(body)
    return render(request, rt, "sso_identity.html", {"identity": identity, "next": next_path})


def _set_browser_cookie(response: Response, rt: Runtime, value: str) -> None:
    """The IdP posts back cross-site: on https the cookie must be SameSite=None."""
    secure = rt.settings.secure_cookies
    response.set_cookie(
        BROWSER_COOKIE, value, max_age=600, httponly=True, secure=secure,
        samesite="none" if secure else "lax", path="/sso/",
    )  # fmt: skip
