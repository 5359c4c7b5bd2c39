"""From a request's ``Authorization`` header or session cookie to a
:class:`~hubgate.principals.Credential`: shared by every route (through
:func:`hubgate.web.context.resolve_credential`) and forward-auth's lean path,
which has only the raw header values."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hubgate.access import CredentialKind
from hubgate.accounts import sessions, tokens
from hubgate.errors import Unauthenticated
from hubgate.principals import ANONYMOUS, Credential
from hubgate.runtime import Runtime

__all__ = ["bearer_secret", "resolve"]


def bearer_secret(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; any other scheme is refused
    (a client that sends credentials hubgate cannot read must not pass as anonymous)."""
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("Use 'Authorization: Bearer hg_...'.", code="token_invalid")
    return value.strip()


def resolve(db: Session, rt: Runtime, authorization: str | None, cookie: str | None) -> Credential:
    """The request's credential: a bearer token wins over the session cookie."""
    secret = bearer_secret(authorization)
    if secret is not None:
        return _token_credential(db, rt, secret)
    if cookie:
        session = sessions.resolve(db, cookie, rt.lifetimes, rt.now())
        if session is not None:
            return Credential(
                kind=CredentialKind.SESSION, user_id=session.user_id, label=session.email,
                subject=session.email, session_id=session.id, until=session.until,
            )  # fmt: skip
    return ANONYMOUS


def _token_credential(db: Session, rt: Runtime, secret: str) -> Credential:
    token = tokens.resolve(db, secret, rt.now())
    if token.user_id is None:
        return Credential(
            kind=CredentialKind.TEAM_TOKEN, label=f"token:{token.id}", subject=f"token:{token.id}",
            token_id=token.id, scopes=token.scopes, team_id=token.team_id, org_id=token.org_id,
            until=token.expires_at,
        )  # fmt: skip
    email = token.email or f"user:{token.user_id}"
    return Credential(
        kind=CredentialKind.PERSONAL_TOKEN, user_id=token.user_id,
        label=f"{email} (token:{token.id})", subject=email, token_id=token.id,
        scopes=token.scopes, until=token.expires_at,
    )  # fmt: skip
