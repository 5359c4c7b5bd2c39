"""OpenID Connect logout routes: the provider's back-channel POST (Back-Channel
Logout 1.0 §2.5, §2.8) and the browser's return from an RP-initiated logout
(RP-Initiated Logout 1.0 §3).

The back-channel endpoint is a server-to-server POST: no cookie, no CSRF token;
the logout_token's signature is what authenticates it. Its answers are never
cached (§2.8), and a refusal is ``400`` with an OAuth-style JSON body that also
carries hubgate's reason code.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from hubgate.audit import Actor
from hubgate.errors import HubgateError
from hubgate.sso.flows import oidc_logout
from hubgate.web.context import Rt, client_address, trace_id
from hubgate.web.pages.kit import render
from hubgate.web.schemas import MAX_ROW_ID, RowId
from hubgate.web.session_cookie import BROWSER_COOKIE
from hubgate.web.threads import on_network_thread

__all__ = ["router"]

router = APIRouter(tags=["sso"])
_NO_STORE = {"Cache-Control": "no-store"}


@router.post("/sso/oidc/{connection_id}/backchannel-logout")
async def backchannel_logout(
    connection_id: str,
    request: Request,
    rt: Rt,
    logout_token: Annotated[str, Form()] = "",
) -> Response:
    """200 once a valid logout_token is taken, also when no session matched. The
    path and the field have no declared bounds so that any bad request still gets
    this JSON body, uncached: an id that is no row id names no connection, the
    body limit bounds the field, and the flow refuses one over MAX_TOKEN first.
    On a network thread: the token's keys may have to be fetched
    (:mod:`hubgate.web.threads`)."""
    return await on_network_thread(_backchannel, connection_id, request, rt, logout_token)


def _backchannel(connection_id: str, request: Request, rt: Rt, logout_token: str) -> Response:
    row_id = _row_id(connection_id)
    actor = Actor(
        label=f"oidc connection {row_id}",
        client_address=client_address(request, rt.settings.trusted_proxies),
        trace_id=trace_id(request),
    )
    try:
        oidc_logout.backchannel(rt, actor, row_id, logout_token)
    except HubgateError as exc:
        body = {"error": "invalid_request", "error_description": exc.message, "code": exc.code}
        return JSONResponse(body, status_code=exc.status, headers=_NO_STORE)
    return Response(status_code=200, headers=_NO_STORE)


def _row_id(value: str) -> int:
    """The connection id in the path, or 0 (no row has it) when it is none."""
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return 0
    number = int(value)
    return number if 1 <= number <= MAX_ROW_ID else 0


@router.get("/sso/oidc/{connection_id}/logged-out")
def logged_out(connection_id: RowId, request: Request, rt: Rt, state: str = "") -> Response:
    """The post_logout_redirect_uri: the provider confirmed when it sends back the
    state this browser left with. The session here ended before, either way."""
    browser_key = request.cookies.get(BROWSER_COOKIE, "")[:128]
    back = oidc_logout.returned(rt, connection_id, state[:128], browser_key)
    context = {"idp": back.idp, "confirmed": back.confirmed}
    if not back.confirmed:
        context["reason"] = "this sign-out was not started in this browser, or it expired"
    return render(request, rt, "signed_out.html", context)
