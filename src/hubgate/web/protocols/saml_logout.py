"""The SAML SingleLogoutService, ``/sso/saml/{connection}/slo`` (HTTP-Redirect
and HTTP-POST bindings): the IdP's LogoutRequest in, a signed LogoutResponse
back to the IdP; or the IdP's LogoutResponse to ours, and a page that says
where the person is signed out (:mod:`hubgate.sso.flows.saml_logout`).

Like the ACS, both come cross-site from the IdP: no CSRF token. A LogoutRequest
is authenticated by its signature alone; a LogoutResponse must also answer a
request this browser sent (the SSO browser cookie).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hubgate.runtime import Runtime
from hubgate.sso.flows import saml_logout
from hubgate.sso.saml.bindings import Received, received_by_post, received_by_redirect
from hubgate.sso.saml.errors import BindingInvalid, ResponseTooLarge
from hubgate.web.context import CurrentCredential, Rt, actor_of
from hubgate.web.pages.kit import render
from hubgate.web.schemas import RowId
from hubgate.web.session_cookie import BROWSER_COOKIE

__all__ = ["router"]

router = APIRouter(tags=["sso"])
_MAX_FORM_FIELD = 512 * 1024
_MAX_QUERY = 64 * 1024


@router.get("/sso/saml/{connection_id}/slo")
def slo_redirect(
    connection_id: RowId, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """HTTP-Redirect: the message in the query string, taken raw, as signed; or,
    with ``send``, this browser's sign-out on its way to an HTTP-POST IdP."""
    raw: bytes = request.scope.get("query_string", b"")
    send = request.query_params.get("send")
    if send is not None:
        browser_key = request.cookies.get(BROWSER_COOKIE, "")
        return _post_form(
            request, rt, saml_logout.pending_form(rt, connection_id, send, browser_key)
        )

    def received() -> Received:
        if len(raw) > _MAX_QUERY:
            raise ResponseTooLarge("The SAML query string is longer than allowed.")
        return received_by_redirect(raw.decode("latin-1"))

    return _answer(request, rt, credential, connection_id, received)


@router.post("/sso/saml/{connection_id}/slo")
def slo_post(
    connection_id: RowId,
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    saml_request: Annotated[str | None, Form(alias="SAMLRequest")] = None,
    saml_response: Annotated[str | None, Form(alias="SAMLResponse")] = None,
    relay_state: Annotated[str | None, Form(alias="RelayState")] = None,
) -> Response:
    """HTTP-POST: the message in a form field, signed in its XML. The body is
    bounded by the app's limit; each field by the binding's, which audits it."""

    def received() -> Received:
        if (saml_request is None) == (saml_response is None):
            raise BindingInvalid("Give exactly one of SAMLRequest and SAMLResponse.")
        parameter, value = (
            ("SAMLRequest", saml_request) if saml_request is not None
            else ("SAMLResponse", saml_response or "")
        )  # fmt: skip
        return received_by_post(parameter, value, relay_state, _MAX_FORM_FIELD)

    return _answer(request, rt, credential, connection_id, received)


def _answer(
    request: Request,
    rt: Runtime,
    credential: CurrentCredential,
    connection_id: int,
    received: Callable[[], Received],
) -> Response:
    actor = actor_of(request, rt, credential)
    browser_key = request.cookies.get(BROWSER_COOKIE, "")
    outcome = saml_logout.receive(rt, actor, connection_id, received, browser_key)
    if isinstance(outcome, saml_logout.Answered):
        if outcome.outgoing.fields is not None:
            return _post_form(request, rt, outcome.outgoing)
        return RedirectResponse(outcome.outgoing.url, status_code=303)
    context = {"idp": outcome.idp, "confirmed": outcome.confirmed, "reason": outcome.reason}
    return render(request, rt, "signed_out.html", context)


def _post_form(request: Request, rt: Runtime, outgoing: saml_logout.Outgoing) -> Response:
    """HTTP-POST (bindings §3.5.4): a form the browser submits to the IdP."""
    context = {"action": outgoing.url, "fields": outgoing.fields or {}}
    return render(request, rt, "saml_post.html", context)
