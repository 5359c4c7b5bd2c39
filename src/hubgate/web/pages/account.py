"""Account pages: sign-up, email verification, sign-in and out, tokens and emails."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import Response

from hubgate import audit
from hubgate.accounts import tokens, users
from hubgate.errors import Forbidden, TooManyRequests, Unauthenticated
from hubgate.gate.usage_report import usage_of
from hubgate.orgs import queries
from hubgate.principals import Credential
from hubgate.runtime import Runtime
from hubgate.sso import routing
from hubgate.sso.platform import providers
from hubgate.web.api.accounts import end_session, password_sign_in
from hubgate.web.context import CurrentCredential, CurrentUser, Rt, actor_of, client_address
from hubgate.web.context import trace_id as trace_of
from hubgate.web.pages.kit import FORM_ERRORS, SignedIn, page_router, render, safe_next, see_other
from hubgate.web.schemas import RowId
from hubgate.web.session_cookie import set_browser_cookie
from hubgate.web.threads import on_network_thread

__all__ = ["router"]

router = page_router()

Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=256)]


# -- sign-up and verification --------------------------------------------------


def _signin_page(
    request: Request, rt: Runtime, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    """The sign-in or sign-up page, with a "Continue with NAME" link per platform provider."""
    with rt.db.transaction() as db:
        buttons = providers.buttons(db)
    return render(request, rt, template, {**context, "providers": buttons}, status)


@router.get("/signup")
def signup_form(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return _signin_page(request, rt, "signup.html", {})


@router.post("/signup")
def signup(
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    email: Email = "",
    password: Password = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    actor = audit.Actor(
        label=email[:254], client_address=client_address(request, rt.settings.trusted_proxies),
        trace_id=trace_of(request),
    )  # fmt: skip
    try:
        with rt.db.transaction() as db:
            users.sign_up(db, rt, actor, email, password, display_name or None)
    except FORM_ERRORS as exc:
        context = {"error": exc.message, "email": email, "display_name": display_name}
        return _signin_page(request, rt, "signup.html", context, exc.status)
    return see_other("/signup/sent")


@router.get("/signup/sent")
def signup_sent(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return render(request, rt, "signup_sent.html", {})


@router.get("/verify-email")
def verify_email_form(
    request: Request, rt: Rt, credential: CurrentCredential, token: str = ""
) -> Response:
    """Only shows a button: mail scanners open links, so a GET must not use the token.
    The link verifies only in a session of its account: signed out, sign in first."""
    if credential.user_id is None or not credential.is_user:
        return _sign_in_to_verify(token)
    return render(request, rt, "verify_email.html", {"token": token[:128]})


@router.post("/verify-email")
def verify_email(
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    if credential.user_id is None or not credential.is_user:
        return _sign_in_to_verify(token)
    with rt.db.transaction() as db:
        actor = actor_of(request, rt, credential)
        users.verify_email(db, rt, actor, token, credential.user_id)
    return see_other("/verify-email/done")


def _sign_in_to_verify(token: str) -> Response:
    target = "/verify-email?" + urlencode({"token": token[:128]})
    return see_other("/login?" + urlencode({"next": target}))


@router.get("/verify-email/done")
def verify_email_done(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return render(request, rt, "verify_done.html", {})


# -- sign-in and out -------------------------------------------------------------


@router.get("/login")
def login_form(
    request: Request, rt: Rt, credential: CurrentCredential, next: str = "/", reset: str = ""
) -> Response:
    context = {"next": safe_next(next), "reset_done": reset == "done"}
    return _signin_page(request, rt, "login.html", context)


@router.post("/login")
def login(
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    email: Email = "",
    password: Password = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
    sso: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    target = safe_next(next)
    if not password or sso:
        return _email_first(request, rt, email, target, asked=bool(sso))
    response = see_other(target)
    try:
        password_sign_in(request, response, rt, email, password)
    except (Unauthenticated, Forbidden, TooManyRequests) as exc:
        context = {
            "error": exc.message, "email": email, "next": target,
            "error_sso_url": exc.details.get("sso_url"),
        }  # fmt: skip
        page = _signin_page(request, rt, "login.html", context, exc.status)
        if "retry_after" in exc.details:
            page.headers["Retry-After"] = str(exc.details["retry_after"])
        return page
    return response


def _email_first(
    request: Request, rt: Runtime, email: str, target: str, *, asked: bool = False
) -> Response:
    """The email's domain picks its org's IdP when that org signs its people in
    through it, or whenever the person asked for single sign-on ("Use single
    sign-on": accounts made just in time have no password to fall back on once
    enforcement is lifted); anyone else, known or not, gets the same password step."""
    with rt.db.transaction() as db:
        found = routing.sso_for_email(db, email.strip(), asked=asked)
        if found is not None:
            org, connection = found
            query = urlencode({"next": target, "connection": connection.id})
            return see_other(f"/sso/{org.name}/start?{query}")
    context = {"email": email, "next": target, "step": "password"}
    if asked:
        context["notice"] = "No single sign-on is set up for that address: use your password."
    return _signin_page(request, rt, "login.html", context)


@router.post("/logout")
async def logout(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    """Sign out here, then on to the IdP when the session came from one that takes
    logout requests; it sends the browser back to a page that says where it was
    signed out (:mod:`hubgate.web.protocols.logout`). On a network thread: asking
    the IdP may need its discovery document again (:mod:`hubgate.web.threads`)."""
    return await on_network_thread(_logout, request, rt, credential)


def _logout(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    response = see_other("/signed-out")
    browser_key = secrets.token_urlsafe(24)
    done = end_session(request, response, rt, credential, browser_key=browser_key)
    if done.redirect is not None:
        response.headers["location"] = done.redirect
        set_browser_cookie(response, rt, browser_key)
    return response


@router.get("/signed-out")
def signed_out(request: Request, rt: Rt) -> Response:
    """Signed out here only: no IdP was asked (the IdP's return pages say more)."""
    return render(request, rt, "signed_out.html", {"idp": None, "confirmed": False})


# -- personal tokens ---------------------------------------------------------------


def _tokens_page(
    request: Request, rt: Runtime, credential: Credential, status: int = 200, **extra: Any
) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        rows = queries.personal_tokens(db, credential.user_id)
        usage = usage_of(db, rows, rt.now().date())
    context = {
        "tokens": rows, "usage": usage,
        "scopes": sorted(s.value for s in tokens.PERSONAL_SCOPES), **extra,
    }  # fmt: skip
    return render(request, rt, "tokens.html", context, status)


@router.get("/settings/tokens")
def tokens_page(request: Request, rt: Rt, credential: SignedIn) -> Response:
    return _tokens_page(request, rt, credential)


@router.post("/settings/tokens")
def create_token(
    request: Request,
    rt: Rt,
    credential: SignedIn,
    name: Annotated[str, Form(max_length=100)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[int | None, Form(ge=1, le=3650)] = None,
) -> Response:
    """Shows the new secret in this response only (no redirect: it is never shown again)."""
    assert credential.user_id is not None
    try:
        with rt.db.transaction() as db:
            new = tokens.create_personal(
                db, actor_of(request, rt, credential), credential.user_id, name,
                scopes or [], expires_in_days, rt.now(),
            )  # fmt: skip
    except FORM_ERRORS as exc:
        return _tokens_page(request, rt, credential, exc.status, error=exc.message)
    return _tokens_page(request, rt, credential, new_token=new)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, rt: Rt, credential: SignedIn, token_id: RowId) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        tokens.revoke_personal(
            db, actor_of(request, rt, credential), credential.user_id, token_id, rt.now()
        )
    return see_other("/settings/tokens")


# -- emails ------------------------------------------------------------------------


@router.get("/settings/emails")
def emails_page(request: Request, rt: Rt, credential: SignedIn, user: CurrentUser) -> Response:
    return render(request, rt, "emails.html", {"emails": user.emails})


@router.post("/settings/emails")
def add_email(
    request: Request, rt: Rt, credential: SignedIn, user: CurrentUser, email: Email = ""
) -> Response:
    try:
        with rt.db.transaction() as db:
            users.add_email(db, rt, actor_of(request, rt, credential), db.merge(user), email)
    except FORM_ERRORS as exc:
        context = {"emails": user.emails, "error": exc.message, "email": email}
        return render(request, rt, "emails.html", context, exc.status)
    return see_other("/settings/emails")


@router.post("/settings/emails/remove")
def remove_email(
    request: Request, rt: Rt, credential: SignedIn, user: CurrentUser, email: Email = ""
) -> Response:
    with rt.db.transaction() as db:
        users.remove_email(
            db, actor_of(request, rt, credential), db.merge(user), email.strip().lower()
        )
    return see_other("/settings/emails")
