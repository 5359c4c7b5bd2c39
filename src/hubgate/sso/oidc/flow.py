"""The authorization code flow with PKCE (OpenID Connect Core §3.1, RFC 7636),
as pure functions: URLs and requests in, an Identity out."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

from joserfc import jwt

from hubgate.sso.identity import Identity, IdpSession
from hubgate.sso.oidc.client_keys import ASSERTION_ALGORITHM, signing_key
from hubgate.sso.oidc.config import OidcConfig, TokenAuth
from hubgate.sso.oidc.errors import UserinfoMismatch

__all__ = [
    "TokenRequest",
    "authorization_url",
    "identity_from",
    "needs_userinfo",
    "pkce",
    "token_request",
]


def pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge); ``plain`` is never used."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_url(config: OidcConfig, state: str, nonce: str, challenge: str) -> str:
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": config.redirect_uri,
        "scope": " ".join(config.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    endpoint = config.provider.authorization_endpoint
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    url: str
    form: dict[str, str]
    auth: tuple[str, str] | None


def token_request(config: OidcConfig, code: str, verifier: str, now: datetime) -> TokenRequest:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": config.redirect_uri,
        "code_verifier": verifier,
    }
    url = config.provider.token_endpoint
    if config.token_auth is TokenAuth.CLIENT_SECRET_BASIC:
        # RFC 6749 §2.3.1: form-urlencode both before the Basic encoding.
        return TokenRequest(
            url, form, (quote_plus(config.client_id), quote_plus(config.client_secret))
        )
    form["client_id"] = config.client_id
    if config.token_auth is TokenAuth.CLIENT_SECRET_POST:
        form["client_secret"] = config.client_secret
        return TokenRequest(url, form, None)
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    form["client_assertion"] = _client_assertion(config, now)
    return TokenRequest(url, form, None)


def _client_assertion(config: OidcConfig, now: datetime) -> str:
    """RFC 7523 §3: a short-lived JWT signed with the connection's private key,
    whose ``kid`` names the key the connection publishes (client_keys)."""
    key = signing_key(config.private_key_pem)
    claims = {
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": config.provider.token_endpoint,
        "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=2)).timestamp()),
    }
    header = {"alg": ASSERTION_ALGORITHM, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ASSERTION_ALGORITHM])


def identity_from(
    config: OidcConfig,
    claims: Mapping[str, Any],
    userinfo: Mapping[str, Any] | None,
    id_token: str | None = None,
) -> Identity:
    """The Identity from the verified id_token, completed by userinfo (same ``sub``)."""
    if userinfo is not None and userinfo.get("sub") != claims["sub"]:
        raise UserinfoMismatch()
    sid = claims.get("sid")
    if sid is not None and (not isinstance(sid, str) or not sid or len(sid) > _MAX_SID_LENGTH):
        raise UserinfoMismatch("The id_token's sid is not a usable session id.")
    merged = {**(userinfo or {}), **claims}
    return Identity(
        connection_id=config.connection_id,
        subject=f"{claims['iss']} {claims['sub']}",
        email=_text(merged.get(config.email_claim)),
        email_verified=merged.get(config.email_verified_claim) is True,
        display_name=_text(merged.get(config.name_claim)),
        groups=_groups(merged.get(config.groups_claim)),
        attributes={k: _values(v) for k, v in merged.items() if k not in _PROTOCOL_CLAIMS},
        authenticated_at=_instant(claims.get("auth_time")),
        idp_session=IdpSession(claims["sub"], session=sid, id_token=id_token),
    )


_MAX_SID_LENGTH = 256


# Claims about the token itself, not the person: kept out of Identity.attributes.
_PROTOCOL_CLAIMS = frozenset(
    {"iss", "aud", "azp", "exp", "iat", "nbf", "nonce", "jti", "at_hash", "c_hash", "sid"}
)


def needs_userinfo(config: OidcConfig, claims: Mapping[str, Any]) -> bool:
    wanted = (config.email_claim, config.email_verified_claim, config.name_claim)
    return config.provider.userinfo_endpoint is not None and any(c not in claims for c in wanted)


def _text(value: Any) -> str | None:
    return value[:320] if isinstance(value, str) and value else None


def _groups(value: Any) -> tuple[str, ...]:
    """An array, or a space-separated string; Entra group ids stay ids."""
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list):
        return ()
    return tuple(str(item)[:256] for item in items[:1000] if isinstance(item, str | int))


def _values(value: Any) -> tuple[str, ...]:
    """Attribute values as text; JSON booleans keep their JSON spelling."""
    items = value if isinstance(value, list) else [value]
    return tuple(_json_text(item)[:1024] for item in items[:100])


def _json_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, int) and 0 <= value < 2**33:
        return datetime.fromtimestamp(value, tz=UTC)
    return None
