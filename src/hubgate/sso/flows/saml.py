"""The SAML sign-in flow around the protocol code: pending requests bound to
the browser, the shared replay store, and the audit trail.

It ends in a verified Identity; turning that into membership and a session is
the SSO policy's work (DESIGN.md §2).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from hubgate import store
from hubgate.audit import Actor
from hubgate.runtime import Runtime
from hubgate.sso import certificate_rollover, connections
from hubgate.sso.flows.verified import Verified
from hubgate.sso.saml.errors import InResponseToMismatch
from hubgate.sso.saml.request import new_request_id, redirect_url
from hubgate.sso.saml.response import ResponseContext, verify_response

__all__ = ["finish", "start"]

PENDING = "saml_request"
SEEN = "saml_assertion"
REQUEST_TTL = timedelta(minutes=10)


def start(
    db: Session,
    rt: Runtime,
    connection: connections.EndpointSource,
    next_path: str,
    browser_key: str,
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
    }
    store.put(db, PENDING, store.bound(relay_state, browser_key), pending, REQUEST_TTL)
    config = connections.saml_config(rt, connection)
    return redirect_url(config, request_id, relay_state, rt.now())


def finish(
    db: Session,
    rt: Runtime,
    connection: connections.EndpointSource,
    saml_response: str,
    relay_state: str,
    browser_key: str,
) -> Verified:
    """Spend the pending request and verify the IdP's response for this browser,
    recording its assertion ids; raises a SamlError on refusal. The caller commits
    what this spent even then (:mod:`hubgate.sso.flows.signin`)."""
    pending = _pending(db, rt, connection, relay_state[:128], browser_key)
    context = ResponseContext(now=rt.now(), request_id=pending["request_id"] if pending else None)
    config = connections.saml_config(rt, connection)
    identity = verify_response(saml_response, config, context, store.ReplayStore(db, SEEN))
    rollover = Actor.system("certificate-rollover")
    certificate_rollover.signed_by(db, rollover, connection, identity.signing_certificate)
    next_path = pending["next"] if pending else "/"
    return Verified(connections.Through.of(connection), identity, next_path)


def _pending(
    db: Session, rt: Runtime, connection: connections.EndpointSource, key: str, browser_key: str
) -> dict[str, Any] | None:
    """The pending request ``key`` names, spent by the browser that started it; from
    another browser it is not found, and stays for its own (a stolen RelayState
    neither signs in nor cancels the sign-in it names)."""
    found = store.consume(db, PENDING, store.bound(key, browser_key), rt.now()) if key else None
    if found is not None and found["connection_id"] != connection.id:
        raise InResponseToMismatch("The sign-in was started for another connection.")
    return found
