"""Password reset pages: "Forgot password?" and the mailed link's page.

The link's page (a GET, which mail scanners open) only checks the link and shows
the form; the POST spends it. After a reset the person signs in afresh.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import Response

from hubgate.account_security import recovery
from hubgate.account_security.refusals import Refused
from hubgate.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.web.context import CurrentCredential, Rt, actor_of
from hubgate.web.pages.kit import page_router, render, see_other
from hubgate.web.session_cookie import clear_session_cookie

__all__ = ["router"]

router = page_router()

Token = Annotated[str, Form(max_length=1024)]


def _refused(
    request: Request, rt: Runtime, template: str, error: HubgateError, **extra: object
) -> Response:
    context = {
        "error": error.message, "code": error.code, "sso_url": error.details.get("sso_url"),
        **extra,
    }  # fmt: skip
    page = render(request, rt, template, context, error.status)
    if "retry_after" in error.details:
        page.headers["Retry-After"] = str(error.details["retry_after"])
    return page


@router.get("/forgot-password")
def forgot_form(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    return render(request, rt, "forgot_password.html", {})


@router.post("/forgot-password")
def forgot(
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    with rt.db.transaction() as db:
        outcome = recovery.request_reset(db, rt, actor_of(request, rt, credential), email)
    if isinstance(outcome, Refused):
        return _refused(request, rt, "forgot_password.html", outcome.error, email=email)
    return render(request, rt, "forgot_password.html", {"sent": recovery.NEUTRAL})


def _signed_in(credential: CurrentCredential) -> int | None:
    return credential.user_id if credential.is_user else None


@router.get("/reset-password")
def reset_form(
    request: Request, rt: Rt, credential: CurrentCredential, token: str = ""
) -> Response:
    """Checks the link (spending nothing) before asking for the new password."""
    key = token[:1024]
    with rt.db.transaction() as db:
        outcome = recovery.check_link(
            db, rt, actor_of(request, rt, credential), key, _signed_in(credential)
        )
    if isinstance(outcome, Refused):
        return _refused(request, rt, "reset_password.html", outcome.error)
    return render(request, rt, "reset_password.html", {"token": key})


@router.post("/reset-password")
def reset(
    request: Request,
    rt: Rt,
    credential: CurrentCredential,
    token: Token = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    with rt.db.transaction() as db:
        outcome = recovery.confirm_reset(
            db, rt, actor_of(request, rt, credential), token, password, _signed_in(credential)
        )
    if isinstance(outcome, Refused):
        keep = outcome.error.code == "weak_password"
        return _refused(request, rt, "reset_password.html", outcome.error,
                        token=token if keep else None)  # fmt: skip
    response = see_other("/login?reset=done")
    clear_session_cookie(response, rt)
    return response
