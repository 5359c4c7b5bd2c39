"""SAML Single Logout around the protocol code (SAML profiles §4.4): the pending
LogoutRequest bound to the browser, the shared replay store, ending the named
sessions, and the audit trail.

- **SP-initiated** (:func:`begin`): sign-out has already ended the session here;
  the browser goes on to the IdP with a signed LogoutRequest whose ID is kept,
  bound to that browser, in the shared store. The IdP's LogoutResponse comes back
  to the SingleLogoutService, which spends that ID (:func:`receive`).
- **IdP-initiated** (:func:`receive`): the IdP's LogoutRequest is verified, its
  ID spent and the sessions it names ended in one transaction; the browser goes
  back to the IdP with a signed LogoutResponse: Success, or Success with
  PartialLogout when no session here matched.

Messages go to the IdP by HTTP-Redirect when its SingleLogoutService takes it,
else by HTTP-POST: a form the browser submits (:class:`Outgoing`); a sign-out's
form waits in the pending request for the browser to fetch (:func:`pending_form`).

A refused message changes nothing and is audited as ``sso.logout_refused`` with
its reason code, in a transaction of its own. No network call is made: the
browser carries every message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.sso import connections, logout
from hubgate.sso.logout import Held
from hubgate.sso.saml.bindings import REDIRECT, Received, encode_post, encode_redirect
from hubgate.sso.saml.config import IdpSingleLogout, SamlConfig
from hubgate.sso.saml.errors import LogoutNotPending, SingleLogoutOff
from hubgate.sso.saml.logout import (
    PARTIAL_LOGOUT,
    LogoutStatus,
    NameIdentifier,
    VerifiedLogoutRequest,
    logout_request,
    logout_response,
    verify_logout_request,
    verify_logout_response,
)
from hubgate.sso.saml.request import new_request_id

__all__ = ["Answered", "Confirmation", "Outgoing", "begin", "pending_form", "receive"]

PENDING = "saml_logout_request"
SEEN = "saml_logout_message"
PENDING_TTL = timedelta(minutes=10)
IDP_LOGOUT = "saml_idp_logout"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A signed message the browser takes to the IdP: a redirect to ``url``
    (HTTP-Redirect), or with ``fields``, a form it posts there (HTTP-POST)."""

    url: str
    fields: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Answered:
    """An IdP's LogoutRequest was honoured: the browser takes the signed
    LogoutResponse to the IdP; ``ended`` sessions ended here."""

    outgoing: Outgoing
    ended: int


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The IdP's LogoutResponse to this browser's LogoutRequest, verified:
    ``confirmed`` when it ended its session (Success); else why not."""

    idp: str
    confirmed: bool
    reason: str | None = None


def begin(rt: Runtime, held: Held, browser_key: str) -> str | None:
    """The IdP URL carrying a signed LogoutRequest for ``held``, bound to the
    browser, or ``None`` when the connection's IdP takes none."""
    if held.subject is None:
        return None  # signed in before hubgate kept the NameID: nothing to name
    with rt.db.transaction() as db:
        config = connections.saml_config(rt, connections.saml_endpoint(db, held.connection_id))
    slo = config.idp_slo
    if slo is None:
        return None
    request_id = new_request_id()
    name_id = NameIdentifier(
        held.subject, held.subject_format, held.name_qualifier, held.sp_name_qualifier
    )
    sessions = (held.session,) if held.session else ()
    message = logout_request(config, request_id, rt.now(), name_id, sessions)
    outgoing = _send(config, slo, slo.url, "SAMLRequest", message, None)
    pending = {"connection_id": held.connection_id, "idp": held.connection_name}
    if outgoing.fields is not None:
        pending["form"] = outgoing.fields["SAMLRequest"]
    with rt.db.transaction() as db:
        store.put(db, PENDING, store.bound(request_id, browser_key), pending, PENDING_TTL)
    if outgoing.fields is None:
        return outgoing.url
    return rt.url(f"/sso/saml/{held.connection_id}/slo?{urlencode({'send': request_id})}")


def pending_form(rt: Runtime, connection_id: int, request_id: str, browser_key: str) -> Outgoing:
    """The HTTP-POST form of this browser's pending LogoutRequest (:func:`begin`)."""
    key = store.bound(request_id[:256], browser_key)
    with rt.db.transaction() as db:
        config = connections.saml_config(rt, connections.saml_endpoint(db, connection_id))
        found = store.peek(db, PENDING, key, rt.now()) if browser_key else None
    if found is None or "form" not in found or config.idp_slo is None:
        raise LogoutNotPending("This browser has no sign-out on its way to the IdP.")
    return Outgoing(config.idp_slo.url, {"SAMLRequest": str(found["form"])})


def _send(
    config: SamlConfig,
    slo: IdpSingleLogout,
    url: str,
    parameter: str,
    message: bytes,
    relay_state: str | None,
) -> Outgoing:
    """``message`` signed for the IdP's binding."""
    if slo.binding == REDIRECT:
        key = config.sp_private_key
        return Outgoing(encode_redirect(url, parameter, message, relay_state, key))
    fields = {parameter: encode_post(message, config.sp_private_key)}
    if relay_state is not None:
        fields["RelayState"] = relay_state
    return Outgoing(url, fields)


def receive(
    rt: Runtime,
    actor: Actor,
    connection_id: int,
    received: Callable[[], Received],
    browser_key: str,
) -> Answered | Confirmation:
    """What the IdP sent to the SingleLogoutService (``received`` decodes it from
    its binding): its LogoutRequest, or its answer to this browser's."""
    try:
        message = received()
        if message.parameter == "SAMLRequest":
            return _idp_logout(rt, actor, connection_id, message)
        return _idp_answered(rt, actor, connection_id, message, browser_key)
    except HubgateError as exc:
        with rt.db.transaction() as db:
            _refused(db, actor, connection_id, exc)
        raise


def _idp_logout(rt: Runtime, actor: Actor, connection_id: int, message: Received) -> Answered:
    """Verify, spend and end, in one transaction; then answer, outside it."""
    with rt.db.transaction() as db:
        config = connections.saml_config(rt, connections.saml_endpoint(db, connection_id))
        slo = _on(config)
        replay = store.ReplayStore(db, SEEN)
        verified = verify_logout_request(message, config, rt.now(), replay)
        ended = logout.end_named(db, actor, _named(connection_id, verified), reason=IDP_LOGOUT)
    status = LogoutStatus.SUCCESS if ended else LogoutStatus.PARTIAL
    answer = logout_response(config, new_request_id(), verified.id, rt.now(), status)
    outgoing = _send(config, slo, slo.response_url, "SAMLResponse", answer, verified.relay_state)
    return Answered(outgoing, ended)


def _on(config: SamlConfig) -> IdpSingleLogout:
    """The IdP's SingleLogoutService, when single logout is on."""
    if config.idp_slo is None:
        raise SingleLogoutOff()
    return config.idp_slo


def _named(connection_id: int, verified: VerifiedLogoutRequest) -> logout.Named:
    name_id = verified.name_id
    return logout.Named(
        connection_id, name_id.value, verified.session_indexes, subject_format=name_id.format
    )


def _idp_answered(
    rt: Runtime, actor: Actor, connection_id: int, message: Received, browser_key: str
) -> Confirmation:
    with rt.db.transaction() as db:
        connection = connections.saml_endpoint(db, connection_id)
        pending = _Pending(db, rt, connection_id, browser_key)
        replay = store.ReplayStore(db, SEEN)
        config = connections.saml_config(rt, connection)
        verified = verify_logout_response(message, config, rt.now(), replay, pending)
        confirmation = Confirmation(pending.idp, verified.success and not verified.partial)
        if not confirmation.confirmed:
            confirmation = Confirmation(pending.idp, False, _why(verified.status, verified.partial))
        audit.record(
            db, actor, "sso.logout_answered", org_id=connection.org_id,
            target=f"connection:{connection_id}", reason=_short(verified.status),
            data={"confirmed": confirmation.confirmed, "partial": verified.partial},
        )  # fmt: skip
    return confirmation


class _Pending:
    """The LogoutRequests this browser sent through this connection."""

    def __init__(self, db: Session, rt: Runtime, connection_id: int, browser_key: str) -> None:
        self.db, self.rt = db, rt
        self.connection_id, self.browser_key = connection_id, browser_key
        self.idp = ""

    def spend(self, request_id: str) -> bool:
        if not self.browser_key:
            return False
        key = store.bound(request_id, self.browser_key)
        found = store.consume(self.db, PENDING, key, self.rt.now())
        if found is None or found["connection_id"] != self.connection_id:
            return False  # another connection's: refused, and the rollback keeps it
        self.idp = str(found["idp"])
        return True


def _why(status: str, partial: bool) -> str:
    if partial:
        return f"it could not end every session it holds ({_short(PARTIAL_LOGOUT)})"
    return f"it answered {_short(status)}"


def _short(status: str) -> str:
    """``urn:oasis:names:tc:SAML:2.0:status:Responder`` -> ``Responder``."""
    return status.rsplit(":", 1)[-1][:64]


def _refused(db: Session, actor: Actor, connection_id: int, exc: HubgateError) -> None:
    connection = db.get(SsoConnection, connection_id)
    audit.record(
        db, actor, "sso.logout_refused", org_id=connection.org_id if connection else None,
        target=f"connection:{connection_id}", reason=exc.code,
    )  # fmt: skip
