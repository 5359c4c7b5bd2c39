"""The account's security page: password, sessions with the SSO authentications
they hold, personal tokens, SSO identities and email addresses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from hubgate.account_security import devices, recovery
from hubgate.account_security.refusals import Refused, raise_refused
from hubgate.orgs import queries
from hubgate.principals import Credential
from hubgate.runtime import Runtime
from hubgate.web.context import CurrentUser, Rt, actor_of
from hubgate.web.pages.kit import SignedIn, page_router, render, safe_next, see_other
from hubgate.web.schemas import RowId

__all__ = ["router"]

router = page_router()

HOME = "/account/security"
Password = Annotated[str, Form(max_length=256)]
_DONE = {
    "password": "Your password was changed; your other sessions ended.",
    "session": "The session ended.",
    "others": "Every other session ended.",
    "unlinked": "The SSO identity was removed, with the sign-ins it gave.",
}


def _page(
    request: Request, rt: Runtime, credential: Credential, status: int = 200, **extra: Any
) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        context = {
            "sessions": devices.list_sessions(
                db, credential.user_id, credential.session_id, rt.lifetimes, rt.now()
            ),
            "tokens": queries.personal_tokens(db, credential.user_id),
            "links": devices.list_links(db, credential.user_id),
            **extra,
        }
    return render(request, rt, "security.html", context, status)


@router.get(HOME)
def security_page(
    request: Request,
    rt: Rt,
    credential: SignedIn,
    user: CurrentUser,
    done: str = "",
    linked: Annotated[str, Query(max_length=64)] = "",
    next: Annotated[str, Query(max_length=2048)] = "/",
) -> Response:
    """Also where a first SSO link lands (``linked``: the org), to review what else
    reaches the account before going on to ``next``."""
    return _page(
        request, rt, credential, emails=user.emails, notice=_DONE.get(done),
        linked=linked, next=safe_next(next),
    )  # fmt: skip


@router.post("/account/password")
def change_password(
    request: Request,
    rt: Rt,
    credential: SignedIn,
    user: CurrentUser,
    current_password: Password = "",
    password: Password = "",
) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        outcome = recovery.change_password(
            db, rt, actor_of(request, rt, credential), credential.user_id, current_password,
            password, credential.session_id,
        )  # fmt: skip
    if isinstance(outcome, Refused):
        error = outcome.error
        return _page(request, rt, credential, error.status, emails=user.emails,
                     error=error.message, code=error.code)  # fmt: skip
    return see_other(f"{HOME}?done=password")


@router.post("/account/sessions/{session_id}/end")
def end_session(request: Request, rt: Rt, credential: SignedIn, session_id: RowId) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        outcome = devices.end_session(
            db, actor_of(request, rt, credential), credential.user_id, session_id
        )
    raise_refused(outcome)
    if session_id == credential.session_id:
        return see_other("/login")
    return see_other(f"{HOME}?done=session")


@router.post("/account/sessions/end-others")
def end_other_sessions(request: Request, rt: Rt, credential: SignedIn) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        devices.end_other_sessions(
            db, actor_of(request, rt, credential), credential.user_id, credential.session_id
        )
    return see_other(f"{HOME}?done=others")


@router.post("/account/sso-links/{link_id}/remove")
def remove_sso_link(request: Request, rt: Rt, credential: SignedIn, link_id: RowId) -> Response:
    assert credential.user_id is not None
    with rt.db.transaction() as db:
        outcome = devices.unlink(db, actor_of(request, rt, credential), credential.user_id, link_id)
    raise_refused(outcome)
    return see_other(f"{HOME}?done=unlinked")
