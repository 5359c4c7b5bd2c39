"""id_token validation (OpenID Connect Core §3.1.3.7, RFC 8725) with joserfc.

The header is checked before any key is chosen; the key comes only from the
provider's published key set, by ``kid`` (or the single key of the right type
when there is no ``kid``); claims are checked after the signature verifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import extract_compact
from joserfc.util import urlsafe_b64decode

from hubgate import bounded_json
from hubgate.sso.oidc.errors import (
    AlgorithmRefused,
    AudienceMismatch,
    HeaderRefused,
    IssuerMismatch,
    KeyNotFound,
    NonceMismatch,
    SignatureInvalid,
    SubjectMissing,
    TokenExpired,
    TokenMalformed,
    TokenTimeInvalid,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "Expected",
    "protected_header",
    "signed_claims",
    "validate_id_token",
]

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c"})
_MAX_TOKEN = 16 * 1024
_MAX_AGE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Expected:
    issuer: str
    client_id: str
    nonce: str
    algorithms: frozenset[str]
    now: datetime
    skew: timedelta = timedelta(seconds=120)


def validate_id_token(
    token: str, keys: KeySet, expected: Expected, *, header: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The verified claims of ``token``, or a typed OidcError. ``header`` is the
    token's :func:`protected_header` when the caller read it already (to fetch the
    key set its ``kid`` needs): it is not read twice."""
    claims = signed_claims(token, keys, expected.algorithms, header=header)
    _check_issuer(claims, expected)
    _check_audience(claims, expected)
    _check_times(claims, expected)
    _check_nonce(claims, expected)
    _check_subject(claims)
    return claims


def signed_claims(
    token: str,
    keys: KeySet,
    algorithms: frozenset[str],
    *,
    header: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of a JWS-signed JWT whose header, algorithm (of ``algorithms``,
    within :data:`ALLOWED_ALGORITHMS`) and signature by one of ``keys`` check out;
    no claim is checked yet. Also the logout_token's first steps."""
    header = protected_header(token) if header is None else header
    algorithm = _algorithm(header, algorithms)
    key = _key(header, algorithm, keys)
    try:
        return dict(jwt.decode(token, key, algorithms=[algorithm]).claims)
    except JoseError as exc:
        raise SignatureInvalid() from exc
    except ValueError as exc:
        raise TokenMalformed() from exc


def protected_header(token: str) -> Mapping[str, Any]:
    """The JWS protected header (RFC 7515 §7.1), read before any key is chosen.

    The header and the payload are held to :mod:`hubgate.bounded_json` first:
    joserfc parses both with :func:`json.loads`, which recurses."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
        raise TokenMalformed()
    try:
        for segment in token.split(".")[:2]:
            bounded_json.check(urlsafe_b64decode(segment.encode()))
        return extract_compact(token.encode()).protected
    except bounded_json.JsonRefused as exc:
        raise TokenMalformed(f"The id_token is refused: {exc.message}") from exc
    except (JoseError, ValueError) as exc:
        raise TokenMalformed() from exc


def _algorithm(header: Mapping[str, Any], algorithms: frozenset[str]) -> str:
    if _FORBIDDEN_HEADERS & header.keys():
        raise HeaderRefused()
    if "crit" in header:
        raise HeaderRefused("The id_token marks extensions critical that hubgate does not know.")
    algorithm = header.get("alg")
    if algorithm not in algorithms or algorithm not in ALLOWED_ALGORITHMS:
        raise AlgorithmRefused()
    return str(algorithm)


def _key(header: Mapping[str, Any], algorithm: str, keys: KeySet) -> RSAKey | ECKey:
    """By ``kid``; without one, only when exactly one key of the right type exists."""
    wanted = RSAKey if algorithm[:2] in ("RS", "PS") else ECKey
    candidates = [k for k in _members(keys) if isinstance(k, wanted)]
    kid = header.get("kid")
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
    if len(candidates) != 1:
        raise KeyNotFound()
    return candidates[0]


def _members(keys: KeySet) -> Iterable[Any]:
    return list(keys.keys)


def _check_issuer(claims: Mapping[str, Any], expected: Expected) -> None:
    if claims.get("iss") != expected.issuer:
        raise IssuerMismatch()


def _check_audience(claims: Mapping[str, Any], expected: Expected) -> None:
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or expected.client_id not in audiences:
        raise AudienceMismatch()
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != expected.client_id:
        raise AudienceMismatch("The id_token was issued to another party (azp).")


def _instant(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 2**33:
        raise TokenTimeInvalid(f"The id_token's {name} is not a valid time.")
    return datetime.fromtimestamp(value, tz=UTC)


def _check_times(claims: Mapping[str, Any], expected: Expected) -> None:
    now, skew = expected.now, expected.skew
    expires, issued, not_before = (_instant(claims, n) for n in ("exp", "iat", "nbf"))
    if expires is None or expires <= now - skew:
        raise TokenExpired()
    if issued is None or issued > now + skew or issued < now - _MAX_AGE:
        raise TokenTimeInvalid()
    if not_before is not None and not_before > now + skew:
        raise TokenTimeInvalid("The id_token is not valid yet (nbf).")


def _check_nonce(claims: Mapping[str, Any], expected: Expected) -> None:
    if not expected.nonce or claims.get("nonce") != expected.nonce:
        raise NonceMismatch()


def _check_subject(claims: Mapping[str, Any]) -> None:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SubjectMissing()
