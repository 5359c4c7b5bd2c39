"""Signing out (DESIGN.md §2): the local session ends at once, then, when the
session came from an IdP that takes logout requests, the browser is sent there
to end the IdP's session too (SAML SP-initiated Single Logout, OpenID Connect
RP-initiated logout). hubgate never waits on the IdP: whatever it answers, or if
it never answers, the session here is already gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.accounts import sessions
from hubgate.audit import Actor
from hubgate.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.sso import logout
from hubgate.sso.flows import oidc_logout, saml_logout
from hubgate.sso.states import ConnectionKind

__all__ = ["SignedOut", "sign_out"]


@dataclass(frozen=True, slots=True)
class SignedOut:
    """Where the browser goes next: ``redirect`` to the IdP named ``idp`` when it
    was asked to end its session too, else nowhere in particular."""

    idp: str | None = None
    redirect: str | None = None


def sign_out(
    rt: Runtime,
    actor: Actor,
    session_id: int | None,
    cookie: str,
    browser_key: str | None,
) -> SignedOut:
    """End the session ``cookie`` names, then, given a ``browser_key`` to bind the
    exchange to, ask its IdP."""
    with rt.db.transaction() as db:
        found = logout.held(db, session_id) if session_id is not None else None
        sessions.end(db, cookie)
        audit.record(db, actor, "auth.logout")
    if found is None or browser_key is None:
        return SignedOut()
    try:
        redirect = _ask_idp(rt, found, browser_key)
    except HubgateError as exc:
        # The IdP cannot be asked (its discovery failed, its settings changed):
        # the session here has ended all the same, and the log says why.
        with rt.db.transaction() as db:
            _audit_request(db, actor, found, reason=exc.code)
        return SignedOut()
    if redirect is None:
        return SignedOut()
    with rt.db.transaction() as db:
        _audit_request(db, actor, found, reason="sign_out")
    return SignedOut(found.connection_name, redirect)


def _ask_idp(rt: Runtime, found: logout.Held, browser_key: str) -> str | None:
    if found.kind == ConnectionKind.SAML:
        return saml_logout.begin(rt, found, browser_key)
    return oidc_logout.begin(rt, found, browser_key)


def _audit_request(db: Session, actor: Actor, found: logout.Held, *, reason: str) -> None:
    audit.record(
        db, actor, "sso.logout_requested", org_id=found.org_id,
        target=f"connection:{found.connection_id}", reason=reason,
    )  # fmt: skip
