"""OpenID Connect logout around the protocol code (RP-Initiated Logout 1.0,
Back-Channel Logout 1.0).

- **RP-initiated**: :func:`begin` runs after the session here has ended
  (:mod:`hubgate.sso.flows.signout`); it stores a one-time ``state`` bound to the
  browser and sends the browser to the provider's ``end_session_endpoint``.
  :func:`returned` spends that state when the provider sends the browser back to
  the ``post_logout_redirect_uri``: only then did the provider confirm.
- **Back-channel**: :func:`backchannel` verifies a provider's ``logout_token``
  (:mod:`hubgate.sso.oidc.logout_token`; its keys fetched with no transaction
  open), then, in one transaction, spends its ``jti`` (shared by every instance)
  and ends the sessions it names (:func:`hubgate.sso.logout.end_named`). A
  refused token changes nothing and is audited ``sso.logout_refused``.
- :func:`registration`: what an admin registers at the provider.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import HubgateError, NotFound
from hubgate.runtime import Runtime
from hubgate.sso import connections, logout
from hubgate.sso.fetch import fetch
from hubgate.sso.logout import Held
from hubgate.sso.oidc import errors
from hubgate.sso.oidc.config import OidcConfig
from hubgate.sso.oidc.discovery import ProviderMetadata
from hubgate.sso.oidc.jwks import JwksCache
from hubgate.sso.oidc.logout_token import (
    LogoutClaims,
    LogoutExpected,
    key_id,
    validate_logout_token,
)
from hubgate.sso.oidc.rp_logout import end_session_url
from hubgate.sso.states import ConnectionKind, ConnectionState

__all__ = [
    "LogoutRegistration",
    "Returned",
    "backchannel",
    "backchannel_logout_uri",
    "begin",
    "post_logout_redirect_uri",
    "registration",
    "returned",
]

PENDING = "oidc_logout_state"
REPLAY = "oidc_logout_jti"
STATE_TTL = timedelta(minutes=10)
REDISCOVERY_TTL = timedelta(hours=1)
MAX_HINT = 8 * 1024
"""An id_token longer than this is left out of the logout URL (URLs past ~8 KiB
are cut by proxies); the provider then asks the person which session to end."""

_KEYS: dict[bool, JwksCache] = {}
_REDISCOVERED: dict[str, tuple[ProviderMetadata, datetime]] = {}
_LOCK = threading.Lock()


def post_logout_redirect_uri(rt: Runtime, connection_id: int) -> str:
    return rt.url(f"/sso/oidc/{connection_id}/logged-out")


def backchannel_logout_uri(rt: Runtime, connection_id: int) -> str:
    return rt.url(f"/sso/oidc/{connection_id}/backchannel-logout")


# -- RP-initiated logout -------------------------------------------------------------


def begin(rt: Runtime, held: Held, browser_key: str) -> str | None:
    """The provider's end_session_endpoint URL for ``held``, with a state bound to
    the browser, or ``None`` when the provider advertises none or the connection's
    ``rp_logout`` is off. Any discovery is made with no transaction open."""
    with rt.db.transaction() as db:
        endpoint = connections.oidc_endpoint(db, held.connection_id)
    config = connections.oidc_config(rt, endpoint)
    end_session = _provider(rt, endpoint, config).end_session_endpoint
    if not config.rp_logout or end_session is None:
        return None
    state = store.new_key()
    pending = {"connection_id": held.connection_id, "idp": held.connection_name}
    with rt.db.transaction() as db:
        store.put(db, PENDING, store.bound(state, browser_key), pending, STATE_TTL)
    hint = rt.sealer.unseal(held.id_token) if held.id_token else None
    return end_session_url(
        end_session, client_id=config.client_id, state=state,
        post_logout_redirect_uri=post_logout_redirect_uri(rt, held.connection_id),
        id_token_hint=hint if hint and len(hint) <= MAX_HINT else None,
    )  # fmt: skip


def _provider(
    rt: Runtime, endpoint: connections.EndpointSource, config: OidcConfig
) -> ProviderMetadata:
    """The stored metadata; for a connection stored before hubgate read the logout
    metadata, discovered again (once an hour per process: public data)."""
    if "end_session_endpoint" in connections.stored_settings(endpoint)["provider"]:
        return config.provider
    issuer, now = config.provider.issuer, rt.now()
    with _LOCK:
        kept = _REDISCOVERED.get(issuer)
    if kept is not None and now - kept[1] < REDISCOVERY_TTL:
        return kept[0]
    found = connections.discover(rt, issuer)
    with _LOCK:
        _REDISCOVERED[issuer] = (found, now)
    return found


@dataclass(frozen=True, slots=True)
class Returned:
    """The browser is back from the provider: ``confirmed`` when it brought the
    state this browser was sent with; ``idp`` names the connection, if any."""

    idp: str | None
    confirmed: bool


def returned(rt: Runtime, connection_id: int, state: str, browser_key: str) -> Returned:
    """Spend the state bound to this browser (a state from elsewhere is neither
    confirmed nor spent for its own browser)."""
    with rt.db.transaction() as db:
        found = None
        if state and browser_key:
            found = store.consume(db, PENDING, store.bound(state, browser_key), rt.now())
        connection = db.get(SsoConnection, connection_id)
        name = connection.name if connection and connection.kind == ConnectionKind.OIDC else None
    if name is None or found is None or found.get("connection_id") != connection_id:
        return Returned(name, confirmed=False)
    return Returned(str(found.get("idp") or name), confirmed=True)


# -- back-channel logout ------------------------------------------------------------


def backchannel(rt: Runtime, actor: Actor, connection_id: int, logout_token: str) -> int:
    """Verify ``logout_token`` for the active OIDC connection ``connection_id``, spend
    its ``jti`` and end the sessions it names; how many ended. Any refusal is a
    :class:`~hubgate.errors.HubgateError`, audited, with nothing changed."""
    try:
        with rt.db.transaction() as db:
            endpoint = _active(db, connection_id)
        config = connections.oidc_config(rt, endpoint)
        claims = _verified(rt, config, logout_token)
        with rt.db.transaction() as db:
            return _end(db, actor, connection_id, claims)
    except HubgateError as exc:
        with rt.db.transaction() as db:
            _refused(db, actor, connection_id, exc)
        raise


def _active(db: Session, connection_id: int) -> connections.Endpoint:
    """Only an active connection signs people in, so only one may end sessions."""
    endpoint = connections.oidc_endpoint(db, connection_id)
    if endpoint.state != ConnectionState.ACTIVE:
        raise NotFound("No active OIDC connection has this id.", code="sso_connection_not_active")
    return endpoint


def _jwks(rt: Runtime) -> JwksCache:
    allow = rt.settings.allow_private_idp_urls
    with _LOCK:
        if allow not in _KEYS:
            _KEYS[allow] = JwksCache(lambda url: fetch(url, allow_private=allow))
        return _KEYS[allow]


def _verified(rt: Runtime, config: OidcConfig, token: str) -> LogoutClaims:
    """The header first (a malformed token costs no fetch), then the provider's
    keys (fetched now, with no transaction open), then everything else."""
    kid = key_id(token)
    try:
        keys = _jwks(rt).keys_for(config.provider.jwks_uri, kid, rt.now())
    except errors.KeyNotFound as exc:
        raise errors.LogoutKeyNotFound(exc.message) from exc
    expected = LogoutExpected(
        config.provider.issuer, config.client_id, config.algorithms, rt.now(), config.clock_skew
    )
    return validate_logout_token(token, keys, expected)


def _end(db: Session, actor: Actor, connection_id: int, claims: LogoutClaims) -> int:
    """The ``jti`` spent for this connection (until the token could no longer be
    taken anyway), then the sessions named ended, in one transaction."""
    replay = store.ReplayStore(db, REPLAY)
    if not replay.first_use(f"{connection_id}\x00{claims.jti}", claims.replay_until):
        raise errors.LogoutReplayed()
    sessions = (claims.session,) if claims.session is not None else ()
    named = logout.Named(connection_id, subject=claims.subject, sessions=sessions)
    return logout.end_named(db, actor, named, reason="oidc_backchannel_logout")


def _refused(db: Session, actor: Actor, connection_id: int, exc: HubgateError) -> None:
    connection = db.get(SsoConnection, connection_id)
    audit.record(
        db, actor, "sso.logout_refused", org_id=connection.org_id if connection else None,
        target=f"connection:{connection_id}", reason=exc.code,
        data={"protocol": "oidc_backchannel"},
    )  # fmt: skip


# -- what an admin registers at the provider --------------------------------------


@dataclass(frozen=True, slots=True)
class LogoutRegistration:
    """For the SSO page and the setup portal: whether signing out also asks the
    provider (RP-initiated logout: the ``rp_logout`` setting, and an
    ``end_session_endpoint`` in the stored metadata), and the two URIs to
    register at the provider."""

    rp_logout_active: bool
    backchannel_logout_uri: str
    post_logout_redirect_uri: str


def registration(rt: Runtime, connection: connections.EndpointSource) -> LogoutRegistration:
    """From the stored settings alone: no network, no secret opened."""
    settings = connections.stored_settings(connection)
    advertised = settings.get("provider", {}).get("end_session_endpoint") is not None
    return LogoutRegistration(
        rp_logout_active=advertised and settings.get("rp_logout", True) is True,
        backchannel_logout_uri=backchannel_logout_uri(rt, connection.id),
        post_logout_redirect_uri=post_logout_redirect_uri(rt, connection.id),
    )
