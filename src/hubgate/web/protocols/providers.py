"""Platform sign-in providers: "Continue with NAME" starts at the provider, and
its redirect URI signs the person in to their own account
(:mod:`hubgate.sso.platform.signin`). Refusals are pages with a reason code and
a trace id (JSON when asked)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from hubgate.accounts import sessions
from hubgate.sso.platform import signin
from hubgate.web.context import CurrentCredential, Rt, actor_of
from hubgate.web.pages.kit import safe_next
from hubgate.web.schemas import RowId
from hubgate.web.session_cookie import BROWSER_COOKIE, set_browser_cookie, set_session_cookie
from hubgate.web.threads import in_steps

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/sso/platform/{provider_id}/start")
def start(provider_id: RowId, request: Request, rt: Rt, next: str = "/") -> Response:
    """Send the browser to the provider, the state bound to this browser."""
    browser_key = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
    url = signin.start(rt, provider_id, safe_next(next[:2048]), browser_key)
    response = RedirectResponse(url, status_code=303)
    set_browser_cookie(response, rt, browser_key)
    return response


@router.get("/sso/platform/{provider_id}/callback")
async def callback(
    provider_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """The redirect URI: the state first, then the provider's answer and tokens,
    each step on its own kind of thread (:mod:`hubgate.web.threads`)."""
    params = {k: v[:4096] for k, v in list(request.query_params.items())[:32]}
    caller = signin.Caller(
        actor_of(request, rt, credential), request.cookies.get(BROWSER_COOKIE, ""),
        request.headers.get("user-agent"), request.cookies.get(sessions.COOKIE),
    )  # fmt: skip
    signed = await in_steps(signin.ProviderSignIn(rt, caller, provider_id, params))
    if "application/json" in request.headers.get("accept", ""):
        response: Response = JSONResponse({"user_id": signed.user_id, "next": signed.next})
    else:
        response = RedirectResponse(signed.next, status_code=303)
    set_session_cookie(response, rt, signed.cookie)
    return response
