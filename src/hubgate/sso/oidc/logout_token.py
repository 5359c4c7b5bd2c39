"""logout_token validation (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6)
with joserfc, as an ordered list of small checks, each with its own reason code.

1. A JWS in compact form of at most :data:`MAX_TOKEN` characters. A JWE is
   refused: hubgate registers no key to decrypt with, so none is meant for it.
2. The header (RFC 8725): no key taken from it, no unknown ``crit``, an explicit
   ``typ`` only ``logout+jwt`` (§2.4) or ``JWT``; ``alg`` one of the connection's
   algorithms, never ``none`` nor an HMAC (:mod:`hubgate.sso.oidc.id_token`).
3. The signature, by the provider's key named by ``kid`` (§2.6 step 3), as for
   id_tokens.
4. ``iss`` exactly the provider's, ``aud`` holding the client id, and an ``azp``,
   when present or when there are several audiences, naming the client (§2.6
   step 4, as Core §3.1.3.7 steps 2 to 4).
5. Times: ``iat`` present, at most the clock skew in the future, and no older
   than :data:`MAX_AGE` plus the skew (the window in which a token is taken;
   the caller keeps its ``jti`` as used until then, so a replay inside the
   window is caught by the store and one after it by this check); ``exp``, when
   present, not passed.
6. ``events`` a JSON object with the member
   ``http://schemas.openid.net/event/backchannel-logout`` whose value is a JSON
   object (§2.6 step 5).
7. ``sid``, ``sub`` or both (§2.6 step 6), strings of bounded length without
   control characters.
8. No ``nonce`` (§2.6 step 7): an id_token cannot pass for a logout token.
9. ``jti`` present (§2.4), a string of at most :data:`MAX_ID` characters, for
   the caller's replay check (§2.6 step 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import KeySet

from hubgate.sso.oidc import errors
from hubgate.sso.oidc.id_token import protected_header, signed_claims

__all__ = [
    "BACKCHANNEL_EVENT",
    "MAX_AGE",
    "MAX_TOKEN",
    "LogoutClaims",
    "LogoutExpected",
    "key_id",
    "validate_logout_token",
]

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
MAX_TOKEN = 8 * 1024
MAX_AGE = timedelta(minutes=5)
MAX_ID = 256
_TYPES = frozenset({"logout+jwt", "application/logout+jwt", "jwt"})

# The id_token's refusals of a signed JWT's first steps, as the logout_token's.
_AS_LOGOUT: dict[type[errors.OidcError], type[errors.LogoutTokenInvalid]] = {
    errors.TokenMalformed: errors.LogoutTokenMalformed,
    errors.HeaderRefused: errors.LogoutHeaderRefused,
    errors.AlgorithmRefused: errors.LogoutAlgorithmRefused,
    errors.KeyNotFound: errors.LogoutKeyNotFound,
    errors.SignatureInvalid: errors.LogoutSignatureInvalid,
}


@dataclass(frozen=True, slots=True)
class LogoutExpected:
    issuer: str
    client_id: str
    algorithms: frozenset[str]
    now: datetime
    skew: timedelta = timedelta(seconds=120)


@dataclass(frozen=True, slots=True)
class LogoutClaims:
    """What a verified logout_token names: the provider's ``sub`` and/or ``sid``,
    and its ``jti``, to be spent once until :attr:`replay_until`."""

    jti: str
    issued_at: datetime
    subject: str | None
    session: str | None
    replay_until: datetime


def validate_logout_token(token: str, keys: KeySet, expected: LogoutExpected) -> LogoutClaims:
    """The verified logout_token, or a :class:`~errors.LogoutTokenInvalid`."""
    _check_form(token)
    claims = _signed(token, keys, expected)
    _check_issuer(claims, expected)
    _check_audience(claims, expected)
    issued = _check_times(claims, expected)
    _check_events(claims)
    subject, session = _check_subject(claims)
    _check_no_nonce(claims)
    jti = _check_jti(claims)
    return LogoutClaims(jti, issued, subject, session, issued + MAX_AGE + expected.skew)


def key_id(token: str) -> str | None:
    """The ``kid`` of a token whose form and header pass, read before any key is
    fetched (a malformed token costs no fetch)."""
    _check_form(token)
    try:
        kid = protected_header(token).get("kid")
    except errors.OidcError as exc:
        raise errors.LogoutTokenMalformed() from exc
    return kid if isinstance(kid, str) else None


def _check_form(token: str) -> None:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise errors.LogoutTokenMalformed()
    if token.count(".") == 4:
        raise errors.LogoutTokenEncrypted()
    if token.count(".") != 2:
        raise errors.LogoutTokenMalformed()


def _signed(token: str, keys: KeySet, expected: LogoutExpected) -> dict[str, Any]:
    try:
        _check_type(protected_header(token))
        return signed_claims(token, keys, expected.algorithms)
    except errors.LogoutTokenInvalid:
        raise
    except errors.OidcError as exc:
        raise _AS_LOGOUT.get(type(exc), errors.LogoutTokenMalformed)() from exc


def _check_type(header: Mapping[str, Any]) -> None:
    kind = header.get("typ")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in _TYPES):
        raise errors.LogoutHeaderRefused("The logout_token's typ names another kind of token.")


def _check_issuer(claims: Mapping[str, Any], expected: LogoutExpected) -> None:
    if claims.get("iss") != expected.issuer:
        raise errors.LogoutIssuerMismatch()


def _check_audience(claims: Mapping[str, Any], expected: LogoutExpected) -> None:
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or expected.client_id not in audiences:
        raise errors.LogoutAudienceMismatch()
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != expected.client_id:
        raise errors.LogoutAudienceMismatch("The logout_token was issued to another party (azp).")


def _instant(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 2**33:
        raise errors.LogoutTimeInvalid(f"The logout_token's {name} is not a valid time.")
    return datetime.fromtimestamp(value, tz=UTC)


def _check_times(claims: Mapping[str, Any], expected: LogoutExpected) -> datetime:
    now, skew = expected.now, expected.skew
    issued, expires = _instant(claims, "iat"), _instant(claims, "exp")
    if issued is None or issued > now + skew:
        raise errors.LogoutTimeInvalid()
    if issued < now - MAX_AGE - skew:
        raise errors.LogoutTimeInvalid("The logout_token was issued too long ago (iat).")
    if expires is not None and expires <= now - skew:
        raise errors.LogoutTokenExpired()
    return issued


def _check_jti(claims: Mapping[str, Any]) -> str:
    jti = claims.get("jti")
    if not _usable(jti):
        raise errors.LogoutJtiMissing()
    return str(jti)


def _usable(value: Any) -> bool:
    """A non-empty, bounded string without control characters (which no session
    was ever stored under, and which PostgreSQL text refuses)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_ID
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    )


def _check_events(claims: Mapping[str, Any]) -> None:
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise errors.LogoutEventMissing()


def _named(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not _usable(value):
        raise errors.LogoutSubjectMissing(f"The logout_token's {name} is not usable.")
    return str(value)


def _check_subject(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    subject, session = _named(claims, "sub"), _named(claims, "sid")
    if subject is None and session is None:
        raise errors.LogoutSubjectMissing()
    return subject, session


def _check_no_nonce(claims: Mapping[str, Any]) -> None:
    if "nonce" in claims:
        raise errors.LogoutNoncePresent()
