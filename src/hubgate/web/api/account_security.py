"""Account security in the JSON API: password reset and change, the caller's
sessions and SSO identities, and an org admin ending a member's org sessions.

Thin routes: a validated body, one service call in one transaction. A refusal the
service audits comes back as a value; it is raised once its transaction committed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request, Response

from hubgate.access import Scope
from hubgate.account_security import devices, recovery
from hubgate.account_security.refusals import raise_refused
from hubgate.errors import Forbidden, Unauthenticated
from hubgate.principals import Credential
from hubgate.web import schemas
from hubgate.web.api.common import api_router
from hubgate.web.context import CurrentCredential, CurrentUser, Rt, actor_of, org_scope
from hubgate.web.schemas import RowId

__all__ = ["router"]

router = api_router()
EmailPath = Annotated[str, PathParam(max_length=320)]


def _may_change(credential: Credential) -> None:
    """A session, or a personal token with the ``write`` scope."""
    if credential.token_id is not None and Scope.WRITE not in credential.scopes:
        raise Forbidden("The access token's scopes do not allow this.", code="scope_insufficient")


# -- password reset and change ------------------------------------------------------


@router.post(
    "/password-reset", status_code=202, response_model=schemas.MessagePublic, tags=["accounts"]
)
def request_password_reset(
    body: schemas.PasswordResetRequest, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.MessagePublic:
    """Mail a reset link; the answer is the same whether or not the address has an account."""
    with rt.db.transaction() as db:
        outcome = recovery.request_reset(db, rt, actor_of(request, rt, credential), body.email)
    raise_refused(outcome)
    return schemas.MessagePublic(message=recovery.NEUTRAL)


@router.post("/password-reset/confirm", response_model=schemas.MessagePublic, tags=["accounts"])
def confirm_password_reset(
    body: schemas.PasswordResetConfirm, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.MessagePublic:
    """Set the new password; every session of the account ends (sign in afresh)."""
    with rt.db.transaction() as db:
        outcome = recovery.confirm_reset(
            db, rt, actor_of(request, rt, credential), body.token, body.password,
            credential.user_id if credential.is_user else None,
        )  # fmt: skip
    raise_refused(outcome)
    return schemas.MessagePublic(message="Your password was changed. Sign in with it.")


@router.post("/me/password", status_code=204, tags=["accounts"])
def change_password(
    body: schemas.PasswordChange, request: Request, rt: Rt, credential: CurrentCredential
) -> Response:
    """From a signed-in session only; the account's other sessions end."""
    if credential.session_id is None or credential.user_id is None:
        raise Unauthenticated("Change the password from a signed-in session.",
                              code="session_required")  # fmt: skip
    with rt.db.transaction() as db:
        outcome = recovery.change_password(
            db, rt, actor_of(request, rt, credential), credential.user_id,
            body.current_password, body.password, credential.session_id,
        )  # fmt: skip
    raise_refused(outcome)
    return Response(status_code=204)


# -- sessions -------------------------------------------------------------------------


def _session_public(row: devices.SessionView) -> schemas.SessionPublic:
    return schemas.SessionPublic(
        id=row.id, created_at=row.created_at, last_used_at=row.last_used_at, client=row.client,
        client_address=row.client_address, current=row.current,
        sso=[schemas.SessionSsoPublic(
            org=s.org, connection=s.connection, authenticated_at=s.authenticated_at,
            fresh_until=s.fresh_until,
        ) for s in row.sso],
    )  # fmt: skip


@router.get("/me/sessions", response_model=list[schemas.SessionPublic], tags=["sessions"])
def list_sessions(
    rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> list[schemas.SessionPublic]:
    with rt.db.transaction() as db:
        rows = devices.list_sessions(db, user.id, credential.session_id, rt.lifetimes, rt.now())
    return [_session_public(r) for r in rows]


@router.delete("/me/sessions/{session_id}", status_code=204, tags=["sessions"])
def end_session(
    session_id: RowId, request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> Response:
    _may_change(credential)
    with rt.db.transaction() as db:
        outcome = devices.end_session(db, actor_of(request, rt, credential), user.id, session_id)
    raise_refused(outcome)
    return Response(status_code=204)


@router.delete("/me/sessions", response_model=schemas.EndedPublic, tags=["sessions"])
def end_other_sessions(
    request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> schemas.EndedPublic:
    """Every session but the caller's own."""
    _may_change(credential)
    with rt.db.transaction() as db:
        ended = devices.end_other_sessions(
            db, actor_of(request, rt, credential), user.id, credential.session_id
        )
    return schemas.EndedPublic(ended=ended)


# -- SSO identities ----------------------------------------------------------------------


@router.get("/me/sso-links", response_model=list[schemas.SsoLinkPublic], tags=["sessions"])
def list_sso_links(rt: Rt, user: CurrentUser) -> list[schemas.SsoLinkPublic]:
    with rt.db.transaction() as db:
        rows = devices.list_links(db, user.id)
    return [
        schemas.SsoLinkPublic(
            id=r.id,
            org=r.org,
            connection=r.connection,
            subject=r.subject,
            linked_at=r.linked_at,
            last_sign_in_at=r.last_sign_in_at,
        )  # fmt: skip
        for r in rows
    ]


@router.delete("/me/sso-links/{link_id}", status_code=204, tags=["sessions"])
def remove_sso_link(
    link_id: RowId, request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> Response:
    _may_change(credential)
    with rt.db.transaction() as db:
        outcome = devices.unlink(db, actor_of(request, rt, credential), user.id, link_id)
    raise_refused(outcome)
    return Response(status_code=204)


# -- an org admin ---------------------------------------------------------------------------


@router.post(
    "/orgs/{org}/members/{email}/end-sessions",
    response_model=schemas.EndedPublic,
    tags=["members"],
)
def end_member_sessions(
    org: str, email: EmailPath, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.EndedPublic:
    """End the member's sessions that hold an SSO authentication for the org (all
    sessions of an account the org manages)."""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        outcome = devices.end_member_sessions(
            db, actor_of(request, rt, credential), principal, found, email
        )
    raise_refused(outcome)
    assert isinstance(outcome, int)
    return schemas.EndedPublic(ended=outcome)
