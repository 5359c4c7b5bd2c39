"""Per-request facts the routes need: the runtime, the caller and its credential."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from hubgate.access import Principal
from hubgate.accounts import sessions
from hubgate.audit import Actor, new_trace_id
from hubgate.db.models import Org, User
from hubgate.errors import Unauthenticated
from hubgate.gate import credentials
from hubgate.orgs import service
from hubgate.principals import ANONYMOUS, Credential, principal_for
from hubgate.runtime import Runtime
from hubgate.web.threads import on_request_thread

__all__ = ["CurrentCredential", "CurrentUser", "Rt", "actor_of", "client_address"]


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: a plain ``def`` dependency costs a thread hop per request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(get_runtime)]


def trace_id(request: Request) -> str:
    found = getattr(request.state, "trace_id", None)
    if found is None:
        found = request.state.trace_id = new_trace_id()
    return str(found)


def client_address(request: Request, trusted_proxies: int) -> str | None:
    """The peer address, or the one ``trusted_proxies`` hops back in X-Forwarded-For."""
    peer = request.client.host if request.client else None
    if trusted_proxies <= 0:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    if len(hops) < trusted_proxies:
        return peer
    candidate = hops[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def resolve_credential(db: Session, rt: Runtime, request: Request) -> Credential:
    """The request's credential: a bearer token wins over the session cookie."""
    return credentials.resolve(
        db, rt, request.headers.get("authorization"), request.cookies.get(sessions.COOKIE)
    )


async def get_credential(request: Request, rt: Rt) -> Credential:
    """Async so that a request carrying neither a token nor a session cookie (an
    IdP's POST, a public page) costs no thread hop and no transaction."""
    cached = getattr(request.state, "credential", None)
    if isinstance(cached, Credential):
        return cached
    if request.headers.get("authorization") is None and not request.cookies.get(sessions.COOKIE):
        credential = ANONYMOUS
    else:
        credential = await on_request_thread(_resolve, rt, request)
    request.state.credential = credential
    return credential


def _resolve(rt: Runtime, request: Request) -> Credential:
    with rt.db.transaction() as db:
        return resolve_credential(db, rt, request)


CurrentCredential = Annotated[Credential, Depends(get_credential)]


def get_user(request: Request, rt: Rt, credential: CurrentCredential) -> User:
    """The signed-in person; team tokens act for a team, not a person."""
    if not credential.is_user or credential.user_id is None:
        raise Unauthenticated()
    with rt.db.transaction() as db:
        user = db.get(User, credential.user_id)
        if user is None:
            raise Unauthenticated()
        _ = user.emails
    return user


CurrentUser = Annotated[User, Depends(get_user)]


def actor_of(request: Request, rt: Runtime, credential: Credential) -> Actor:
    return Actor(
        label=credential.label,
        user_id=credential.user_id if credential.is_user else None,
        client_address=client_address(request, rt.settings.trusted_proxies),
        trace_id=trace_id(request),
    )


def org_scope(db: Session, credential: Credential, org_name: str) -> tuple[Org, Principal]:
    """The org named in the path and the caller as seen from it."""
    org = service.get_org(db, org_name)
    return org, principal_for(db, credential, org.id)
