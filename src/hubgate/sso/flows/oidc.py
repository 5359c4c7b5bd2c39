"""The OIDC sign-in around the protocol code: state, nonce and PKCE verifier in
the shared store bound to the browser (with what the browser started, see
:mod:`hubgate.sso.flows.started`), the code exchange, keys and userinfo.

It ends in a verified Identity; membership and sessions are the SSO policy's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from hubgate import bounded_json, store
from hubgate.errors import BadRequest
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.fetch import fetch, post_form
from hubgate.sso.fetch_loop import get as get_on_loop
from hubgate.sso.fetch_loop import post_form as post_form_on_loop
from hubgate.sso.flows.started import Started
from hubgate.sso.identity import Identity
from hubgate.sso.oidc import errors
from hubgate.sso.oidc.config import OidcConfig
from hubgate.sso.oidc.flow import (
    authorization_url,
    identity_from,
    needs_userinfo,
    pkce,
    token_request,
)
from hubgate.sso.oidc.id_token import Expected, protected_header, validate_id_token
from hubgate.sso.oidc.jwks import JwksCache

__all__ = ["Taken", "start", "take", "verify", "verify_on_loop"]

PENDING = "oidc_state"
STATE_TTL = timedelta(minutes=10)
_KEYS: dict[bool, JwksCache] = {}


def _jwks(rt: Runtime) -> JwksCache:
    allow = rt.settings.allow_private_idp_urls
    if allow not in _KEYS:
        _KEYS[allow] = JwksCache(lambda url: fetch(url, allow_private=allow))
    return _KEYS[allow]


def start(
    db: Session,
    rt: Runtime,
    connection: connections.EndpointSource,
    next_path: str,
    browser_key: str,
    started: Started,
) -> str:
    """One entry, bound to the browser, holds the state's secrets and what the
    browser started; the provider's authorization URL."""
    config = connections.oidc_config(rt, connection)
    state, nonce = store.new_key(), store.new_key()
    verifier, challenge = pkce()
    pending = {
        "connection_id": connection.id, "nonce": nonce, "verifier": verifier,
        "next": next_path, "started": started.payload(),
    }  # fmt: skip
    store.put(db, PENDING, store.bound(state, browser_key), pending, STATE_TTL)
    return authorization_url(config, state, nonce, challenge)


@dataclass(frozen=True, slots=True)
class Taken:
    """An OIDC answer's state, spent: what verifying the rest of it needs, read in
    the transaction that spent it and used after it closed."""

    connection: connections.Through
    config: OidcConfig
    nonce: str
    verifier: str
    next: str
    started: Started


def take(
    db: Session,
    rt: Runtime,
    connection: connections.EndpointSource,
    params: Mapping[str, str],
    browser_key: str,
) -> Taken:
    """Spend the answer's state, bound to this browser and connection; the caller
    commits that even when this refuses (:mod:`hubgate.sso.flows.signin`)."""
    pending = _pending(db, rt, connection, params.get("state", "")[:128], browser_key)
    config = connections.oidc_config(rt, connection)
    return Taken(
        connections.Through.of(connection), config, pending["nonce"], pending["verifier"],
        pending["next"], Started.of(pending.get("started") or {}),
    )  # fmt: skip


def verify(
    rt: Runtime, config: OidcConfig, params: Mapping[str, str], verifier: str, nonce: str
) -> Identity:
    """The provider's answer to a spent state: checked, exchanged for tokens, the
    id_token validated, userinfo read when claims are missing. Network calls, made
    with no transaction open, on a network thread (platform providers' sign-ins);
    an org connection's sign-in awaits :func:`verify_on_loop` instead."""
    _check_response(config, params)
    tokens = _exchange(rt, config, params["code"], verifier)
    claims = _validate(rt, config, tokens, nonce)
    userinfo = _userinfo(rt, config, tokens) if needs_userinfo(config, claims) else None
    return identity_from(config, claims, userinfo, tokens["id_token"])


def _pending(
    db: Session, rt: Runtime, connection: connections.EndpointSource, state: str, browser_key: str
) -> dict[str, Any]:
    """The state, spent by its own browser; from another browser it is refused and
    left for its own (a stolen callback URL neither signs in nor cancels)."""
    found = store.consume(db, PENDING, store.bound(state, browser_key), rt.now()) if state else None
    if found is None or found["connection_id"] != connection.id:
        raise errors.StateInvalid()
    return found


def _check_response(config: OidcConfig, params: Mapping[str, str]) -> None:
    """RFC 6749 §4.1.2.1 errors; RFC 9207 ``iss`` (the mix-up defence)."""
    if "error" in params:
        code = params["error"][:64]
        description = params.get("error_description", "")[:200]
        raise errors.ProviderError(f"The identity provider answered {code}: {description}".strip())
    issuer = params.get("iss")
    if config.provider.iss_parameter_supported and issuer is None:
        raise errors.IssuerMismatch("The provider promised an iss parameter and sent none.")
    if issuer is not None and issuer != config.provider.issuer:
        raise errors.IssuerMismatch()
    if not params.get("code") or len(params["code"]) > 2048:
        raise errors.TokenExchangeFailed("The provider sent no authorization code.")


async def verify_on_loop(
    rt: Runtime, config: OidcConfig, params: Mapping[str, str], verifier: str, nonce: str
) -> Identity:
    """:func:`verify`, awaiting the provider on the event loop
    (:mod:`hubgate.sso.fetch_loop`): no thread waits for it. The checks are the same
    functions, in the same order."""
    _check_response(config, params)
    request = token_request(config, params["code"], verifier, rt.now())
    allow = rt.settings.allow_private_idp_urls
    try:
        body = await post_form_on_loop(
            request.url, request.form, allow_private=allow, auth=request.auth
        )
    except BadRequest as exc:
        raise errors.TokenExchangeFailed() from exc
    tokens = _tokens(body)
    token, header, kid = _id_token(tokens)
    keys = _jwks(rt).cached(config.provider.jwks_uri, kid, rt.now())
    if keys is None:
        document = await get_on_loop(config.provider.jwks_uri, allow_private=allow)
        keys = _jwks(rt).refreshed(config.provider.jwks_uri, document, rt.now())
    claims = _claims(rt, config, token, header, keys, nonce)
    userinfo = None
    access, endpoint = tokens.get("access_token"), config.provider.userinfo_endpoint
    if needs_userinfo(config, claims) and isinstance(access, str) and endpoint is not None:
        try:
            answer = await get_on_loop(endpoint, allow_private=allow, headers=_bearer(access))
        except BadRequest as exc:
            raise _userinfo_unusable() from exc
        userinfo = _userinfo_answer(answer)
    return identity_from(config, claims, userinfo, token)


def _exchange(rt: Runtime, config: OidcConfig, code: str, verifier: str) -> dict[str, Any]:
    request = token_request(config, code, verifier, rt.now())
    allow = rt.settings.allow_private_idp_urls
    try:
        body = post_form(request.url, request.form, allow_private=allow, auth=request.auth)
    except BadRequest as exc:
        raise errors.TokenExchangeFailed() from exc
    return _tokens(body)


def _tokens(body: bytes) -> dict[str, Any]:
    """The token endpoint's answer, with its id_token."""
    try:
        answer: Any = bounded_json.loads(body)
    except (BadRequest, ValueError) as exc:  # refused by its bounds, or not JSON
        raise errors.TokenExchangeFailed() from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
        error = answer.get("error") if isinstance(answer, dict) else None
        raise errors.TokenExchangeFailed(f"The token endpoint answered {str(error)[:64]}.")
    return answer


def _validate(
    rt: Runtime, config: OidcConfig, tokens: dict[str, Any], nonce: str
) -> dict[str, Any]:
    """The id_token's header first (a malformed token is refused before any key set
    is fetched), then the key set its ``kid`` needs, then the token."""
    token, header, kid = _id_token(tokens)
    keys = _jwks(rt).keys_for(config.provider.jwks_uri, kid, rt.now())
    return _claims(rt, config, token, header, keys, nonce)


def _id_token(tokens: dict[str, Any]) -> tuple[str, Mapping[str, Any], str | None]:
    """The id_token, its protected header (checked before any key set is fetched)
    and the ``kid`` it names."""
    token: str = tokens["id_token"]
    header = protected_header(token)
    kid = header.get("kid")
    return token, header, kid if isinstance(kid, str) else None


def _claims(
    rt: Runtime,
    config: OidcConfig,
    token: str,
    header: Mapping[str, Any],
    keys: KeySet,
    nonce: str,
) -> dict[str, Any]:
    expected = Expected(
        config.provider.issuer, config.client_id, nonce, config.algorithms, rt.now(),
        config.clock_skew,
    )  # fmt: skip
    return validate_id_token(token, keys, expected, header=header)


def _userinfo(rt: Runtime, config: OidcConfig, tokens: dict[str, Any]) -> dict[str, Any] | None:
    access = tokens.get("access_token")
    endpoint = config.provider.userinfo_endpoint
    if not isinstance(access, str) or endpoint is None:
        return None
    allow = rt.settings.allow_private_idp_urls
    try:
        answer = fetch(endpoint, allow_private=allow, headers=_bearer(access))
    except BadRequest as exc:
        raise _userinfo_unusable() from exc
    return _userinfo_answer(answer)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}


def _userinfo_answer(body: bytes) -> dict[str, Any] | None:
    try:
        answer: Any = bounded_json.loads(body)
    except (BadRequest, ValueError) as exc:
        raise _userinfo_unusable() from exc
    return answer if isinstance(answer, dict) else None


def _userinfo_unusable() -> errors.UserinfoMismatch:
    return errors.UserinfoMismatch("The userinfo endpoint did not answer usable JSON.")
