"""``/api/v1``: sign-up, password sign-in, sign-out, the caller's account and addresses."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.orm import Session

from hubgate import audit, metrics
from hubgate.access import (
    CredentialKind,
)
from hubgate.accounts import sessions, users
from hubgate.db.models import User
from hubgate.errors import Unauthenticated
from hubgate.freshness import sso_status
from hubgate.orgs import queries
from hubgate.principals import Credential
from hubgate.runtime import Runtime
from hubgate.sso import enforcement
from hubgate.sso.flows import signout
from hubgate.web import csrf, schemas
from hubgate.web.api.common import (
    api_router,
)
from hubgate.web.api.common import (
    user_by_id as _user_by_id,
)
from hubgate.web.context import (
    CurrentCredential,
    CurrentUser,
    Rt,
    actor_of,
    client_address,
    trace_id,
)
from hubgate.web.session_cookie import clear_session_cookie, set_session_cookie

__all__ = ["router"]

router = api_router()


def _emails(user: User) -> list[schemas.EmailPublic]:
    return [
        schemas.EmailPublic(
            address=e.address, verified=e.verified_at is not None, primary=e.is_primary
        )
        for e in user.emails
    ]


@router.post("/signup", status_code=201, response_model=schemas.MePublic, tags=["accounts"])
def sign_up(body: schemas.UserCreate, request: Request, rt: Rt) -> schemas.MePublic:
    with rt.db.transaction() as db:
        actor = audit.Actor(
            label=body.email[:254], client_address=request.client.host if request.client else None
        )
        user = users.sign_up(db, rt, actor, body.email, body.password, body.display_name)
        return schemas.MePublic(
            id=user.id,
            display_name=user.display_name,
            emails=_emails(user),
            orgs=[],
            credential="none",
        )


@router.post("/login", response_model=schemas.MePublic, tags=["accounts"])
def log_in(
    body: schemas.LoginRequest, request: Request, response: Response, rt: Rt
) -> schemas.MePublic:
    cookie = password_sign_in(request, response, rt, body.email, body.password)
    with rt.db.transaction() as db:
        session = sessions.resolve(db, cookie, rt.lifetimes, rt.now())
        assert session is not None
        me = _me(db, rt, request, session.user_id, CredentialKind.SESSION, cookie, session.id)
    csrf.attach_cookie(request, response, rt)
    return me


def password_sign_in(
    request: Request, response: Response, rt: Runtime, email: str, password: str
) -> str:
    """Shared by the API and the sign-in page: check, rotate the session, set the cookie."""
    actor = audit.Actor(
        label=email[:254], client_address=client_address(request, rt.settings.trusted_proxies),
        trace_id=trace_id(request),
    )  # fmt: skip
    with rt.db.transaction() as db:
        outcome = users.password_sign_in(
            db, rt, actor, email, password, guard=enforcement.password_refusal
        )
        if isinstance(outcome, users.SignInRefused):
            metrics.count_refusal("password", outcome.error.code)
        else:
            old = request.cookies.get(sessions.COOKIE)
            if old:
                sessions.end(db, old)
            cookie, _id = sessions.start(
                db, outcome.id, rt.lifetimes, rt.now(), client_address=actor.client_address,
                user_agent=request.headers.get("user-agent"),
            )  # fmt: skip
    if isinstance(outcome, users.SignInRefused):
        raise outcome.error
    metrics.SIGN_INS.labels("password", "success").inc()
    set_session_cookie(response, rt, cookie)
    return cookie


@router.post("/logout", status_code=204, tags=["accounts"])
def log_out(request: Request, rt: Rt, credential: CurrentCredential) -> Response:
    """Ends this session. The IdP's own session stays: only the browser's sign-out
    goes on to the IdP (single logout needs the browser)."""
    response = Response(status_code=204)
    end_session(request, response, rt, credential, browser_key=None)
    return response


def end_session(
    request: Request,
    response: Response,
    rt: Runtime,
    credential: Credential,
    *,
    browser_key: str | None,
) -> signout.SignedOut:
    """Shared by the API and the sign-out button: end the session (and, given a
    ``browser_key``, ask its IdP to end its own), audit, clear the cookie."""
    cookie = request.cookies.get(sessions.COOKIE)
    done = signout.SignedOut()
    if cookie:
        actor = actor_of(request, rt, credential)
        done = signout.sign_out(rt, actor, credential.session_id, cookie, browser_key)
    clear_session_cookie(response, rt)
    return done


def _me(
    db: Session,
    rt: Runtime,
    request: Request,
    user_id: int,
    kind: CredentialKind | None,
    cookie: str | None = None,
    session_id: int | None = None,
) -> schemas.MePublic:
    """Who the caller is: emails, orgs with role, teams and SSO state."""
    user = _user_by_id(db, user_id)
    orgs = []
    for org, role, teams in queries.orgs_of(db, user_id):
        status = sso_status(db, org.id, kind or CredentialKind.SESSION, user_id, session_id)
        orgs.append(
            schemas.MembershipSummary(
                org=org.name,
                role=role,
                teams=teams,
                sso=status.state.value,
                sso_fresh_until=status.fresh_until,
                sso_fresh_until_idp_session=status.idp_capped,
            )  # fmt: skip
        )
    token = csrf.token_for(request, rt, cookie) if kind is CredentialKind.SESSION else None
    return schemas.MePublic(
        id=user.id, display_name=user.display_name, emails=_emails(user), orgs=orgs,
        credential=kind.value if kind else "none", csrf_token=token,
    )  # fmt: skip


@router.get("/me", response_model=schemas.MePublic, tags=["accounts"])
def me(
    request: Request, response: Response, rt: Rt, credential: CurrentCredential
) -> schemas.MePublic:
    """Who the caller is; for a session, the CSRF token too, with the cookie it is
    bound to (set here when this browser has none yet: a sign-in by SSO alone
    never showed it a page)."""
    if not credential.is_user or credential.user_id is None:
        raise Unauthenticated()
    with rt.db.transaction() as db:
        found = _me(
            db, rt, request, credential.user_id, credential.kind,
            session_id=credential.session_id,
        )  # fmt: skip
    csrf.attach_cookie(request, response, rt)
    return found


@router.post("/me/emails", status_code=201, response_model=schemas.EmailPublic, tags=["accounts"])
def add_email(
    body: schemas.EmailCreate,
    request: Request,
    rt: Rt,
    user: CurrentUser,
    credential: CurrentCredential,
) -> schemas.EmailPublic:
    with rt.db.transaction() as db:
        row = users.add_email(db, rt, actor_of(request, rt, credential), db.merge(user), body.email)
        return schemas.EmailPublic(address=row.address, verified=False, primary=False)


@router.delete("/me/emails/{address}", status_code=204, tags=["accounts"])
def remove_email(
    address: str, request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        users.remove_email(
            db, actor_of(request, rt, credential), db.merge(user), address[:254].lower()
        )
    return Response(status_code=204)


@router.post("/verify-email", response_model=schemas.EmailPublic, tags=["accounts"])
def verify_email(
    body: schemas.EmailVerify, request: Request, rt: Rt, credential: CurrentCredential
) -> schemas.EmailPublic:
    if credential.user_id is None or not credential.is_user:
        raise Unauthenticated("Sign in to the account that asked for this link first.")
    with rt.db.transaction() as db:
        actor = actor_of(request, rt, credential)
        row = users.verify_email(db, rt, actor, body.token, credential.user_id)
        return schemas.EmailPublic(address=row.address, verified=True, primary=row.is_primary)
