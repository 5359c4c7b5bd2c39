"""The SAML sign-in flow around the protocol code: pending requests bound to
the browser, the shared replay store, and the audit trail.

It ends in a verified Identity; turning that into membership and a session is
the SSO policy's work (DESIGN.md §2).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from hubgate import store
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.saml.errors import InResponseToMismatch
from hubgate.sso.saml.request import new_request_id, redirect_url
from hubgate.sso.saml.response import ResponseContext, verify_response
from hubgate.sso.verified import SignInResult, Spent

__all__ = ["finish", "start"]

PENDING = "saml_request"
SEEN = "saml_assertion"
REQUEST_TTL = timedelta(minutes=10)


def start(
    db: Session, rt: Runtime, connection: SsoConnection, next_path: str, browser_key: str
) -> str:
    """Record a pending AuthnRequest for this browser; the IdP URL to redirect to.

    RelayState carries only an opaque key; the request id, the browser binding
    and ``next`` stay in the shared store.
    """
    request_id, relay_state = new_request_id(), store.new_key()
    pending = {
        "request_id": request_id,
        "connection_id": connection.id,
        "next": next_path,
        "browser": store.digest(browser_key),
    }
    store.put(db, PENDING, relay_state, pending, REQUEST_TTL)
    config = connections.saml_config(rt, connection)
    return redirect_url(config, request_id, relay_state, rt.now())


def finish(
    db: Session,
    rt: Runtime,
    actor: Actor,
    connection: connections.SamlSource,
    saml_response: str,
    relay_state: str,
    browser_key: str,
) -> SignInResult:
    """Verify the IdP's response for this browser; raises a SamlError on refusal."""
    relay_key = relay_state[:128]
    pending = store.consume(db, PENDING, relay_key, rt.now()) if relay_key else None
    if pending is not None and (
        pending["connection_id"] != connection.id or pending["browser"] != store.digest(browser_key)
    ):
        raise InResponseToMismatch("The sign-in was started in another browser or connection.")
    context = ResponseContext(now=rt.now(), request_id=pending["request_id"] if pending else None)
    config = connections.saml_config(rt, connection)
    through = connections.Through.of(connection)
    seen = store.ReplayStore(db, SEEN)
    identity = verify_response(saml_response, config, context, seen)
    connections.identity_verified(db, rt, actor, connection, identity)
    spent = Spent(
        consumed=((PENDING, relay_key),) if pending else (),
        seen=tuple((SEEN, key, until) for key, until in seen.taken),
    )
    return SignInResult(through, identity, pending["next"] if pending else "/", spent)
