"""The dev IdP's OpenID provider: discovery (OpenID Connect Discovery 1.0 §3),
the authorization code flow with PKCE S256 required (Core §3.1, RFC 7636), the
token endpoint with ``client_secret_basic`` / ``client_secret_post`` (Core §9),
RS256 id_tokens signed with joserfc, and userinfo (Core §5.3).

Codes and access tokens live in process memory (:class:`Grants`): this is a
single-process loopback toy; each code is spent once and expires in a minute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

from hubgate.devidp.users import Directory, OidcClient, User

__all__ = [
    "AuthorizationRequest",
    "Grant",
    "Grants",
    "OAuthError",
    "RedirectError",
    "authenticate_client",
    "authorization_request",
    "discovery",
    "id_token",
    "issuer",
    "redirect_with_code",
    "token_response",
    "user_claims",
    "userinfo",
]

SCOPES = ("openid", "email", "profile", "groups")
CODE_LIFETIME = 60
TOKEN_LIFETIME = 300
MAX_GRANTS = 10_000
_MAX_PARAM = 2048
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}")


def issuer(base_url: str) -> str:
    return f"{base_url}/oidc"


def discovery(base_url: str) -> dict[str, Any]:
    """The provider configuration document."""
    iss = issuer(base_url)
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "email", "email_verified", "name", "groups", "nonce"],
        "authorization_response_iss_parameter_supported": True,
    }


class OAuthError(ValueError):
    """RFC 6749 §5.2 error: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class RedirectError(OAuthError):
    """An authorization error sent back to a validated redirect_uri (§4.1.2.1)."""

    def __init__(self, request: AuthorizationRequest, error: str, description: str) -> None:
        super().__init__(error, description)
        self.location = _redirect(request, {"error": error, "error_description": description})


# -- the authorization request -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    scope: tuple[str, ...]
    code_challenge: str
    issuer: str

    def hidden_fields(self) -> dict[str, str]:
        """What the login form carries back (re-validated on submit)."""
        fields = {
            "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scope), "code_challenge": self.code_challenge,
            "code_challenge_method": "S256", "response_type": "code",
        }  # fmt: skip
        fields.update({k: v for k, v in (("state", self.state), ("nonce", self.nonce)) if v})
        return fields


def authorization_request(
    directory: Directory, base_url: str, params: Mapping[str, str]
) -> AuthorizationRequest:
    """Client and redirect_uri first (errors shown, never redirected: §4.1.2.1),
    then everything else (errors redirected to the client)."""
    if any(len(value) > _MAX_PARAM for value in params.values()):
        raise OAuthError("invalid_request", "A parameter is too long.")
    client = directory.client(params.get("client_id", ""))
    if client is None:
        raise OAuthError("invalid_client", "No client is registered with that client_id.", 400)
    redirect_uri = params.get("redirect_uri", "")
    if not client.allows(redirect_uri):
        raise OAuthError("invalid_request", "The redirect_uri is not registered for this client.")
    request = AuthorizationRequest(
        client_id=client.client_id, redirect_uri=redirect_uri, state=params.get("state"),
        nonce=params.get("nonce"), scope=tuple(params.get("scope", "").split()),
        code_challenge=params.get("code_challenge", ""), issuer=issuer(base_url),
    )  # fmt: skip
    _check_request(request, params)
    return request


def _check_request(request: AuthorizationRequest, params: Mapping[str, str]) -> None:
    if params.get("response_type") != "code":
        raise RedirectError(request, "unsupported_response_type", "Only response_type=code.")
    if "openid" not in request.scope or not all(_SCOPE_TOKEN.fullmatch(s) for s in request.scope):
        raise RedirectError(request, "invalid_scope", "The scope must include openid.")
    if params.get("code_challenge_method") != "S256" or not _CHALLENGE.fullmatch(
        request.code_challenge
    ):
        raise RedirectError(request, "invalid_request", "PKCE with S256 is required.")


def _redirect(request: AuthorizationRequest, values: dict[str, str]) -> str:
    if request.state is not None:
        values["state"] = request.state
    values["iss"] = request.issuer  # RFC 9207
    separator = "&" if "?" in request.redirect_uri else "?"
    return request.redirect_uri + separator + urlencode(values)


# -- codes and tokens ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    request: AuthorizationRequest
    user_id: str
    auth_time: int
    expires: float


class Grants:
    """One-time codes and access tokens, in memory, bounded, expiring."""

    def __init__(self) -> None:
        self._codes: dict[str, Grant] = {}
        self._tokens: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue_code(self, request: AuthorizationRequest, user: User) -> str:
        now = time.time()
        grant = Grant(request, user.id, int(now), now + CODE_LIFETIME)
        return self._put(self._codes, grant)

    def spend_code(self, code: str) -> Grant | None:
        with self._lock:
            grant = self._codes.pop(code, None)
        return grant if grant is not None and grant.expires > time.time() else None

    def issue_token(self, grant: Grant) -> str:
        expires = time.time() + TOKEN_LIFETIME
        return self._put(
            self._tokens, Grant(grant.request, grant.user_id, grant.auth_time, expires)
        )

    def token(self, value: str) -> Grant | None:
        with self._lock:
            grant = self._tokens.get(value)
        return grant if grant is not None and grant.expires > time.time() else None

    def _put(self, table: dict[str, Grant], grant: Grant) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for stale in [k for k, g in table.items() if g.expires <= now]:
                del table[stale]
            if len(table) >= MAX_GRANTS:
                raise OAuthError("temporarily_unavailable", "Too many pending grants.", 503)
            table[key] = grant
        return key


def redirect_with_code(request: AuthorizationRequest, code: str) -> str:
    return _redirect(request, {"code": code})


def authenticate_client(
    directory: Directory, form: Mapping[str, str], authorization: str | None
) -> OidcClient:
    """client_secret_basic (RFC 6749 §2.3.1: form-urlencoded, then Basic) or
    client_secret_post; never both."""
    basic = _basic(authorization) if authorization else None
    if basic is not None and "client_secret" in form:
        raise OAuthError("invalid_request", "Use one client authentication method.")
    client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    client = directory.client(client_id)
    if client is None or not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
        raise OAuthError("invalid_client", "Client authentication failed.", 401)
    if basic is not None and form.get("client_id", client_id) != client_id:
        raise OAuthError("invalid_request", "The client_id in the form is another client.")
    return client


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from exc
    client_id, colon, secret = decoded.partition(":")
    if scheme.lower() != "basic" or not colon:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", 401)
    return unquote_plus(client_id), unquote_plus(secret)


def token_response(
    directory: Directory,
    grants: Grants,
    key: RSAKey,
    form: Mapping[str, str],
    authorization: str | None,
) -> dict[str, Any]:
    """RFC 6749 §4.1.3 with RFC 7636 §4.6: the code, its client, its
    redirect_uri and the verifier all checked before any token is made."""
    client = authenticate_client(directory, form, authorization)
    if form.get("grant_type") != "authorization_code":
        raise OAuthError("unsupported_grant_type", "Only authorization_code.")
    grant = grants.spend_code(form.get("code", "")[:_MAX_PARAM])
    if grant is None or grant.request.client_id != client.client_id:
        raise OAuthError("invalid_grant", "The code is unknown, spent or expired.")
    if form.get("redirect_uri") != grant.request.redirect_uri:
        raise OAuthError("invalid_grant", "The redirect_uri differs from the authorization's.")
    if not _verifier_matches(form.get("code_verifier", ""), grant.request.code_challenge):
        raise OAuthError("invalid_grant", "The code_verifier does not match (PKCE).")
    user = directory.by_id(grant.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "The user is gone from the users file.")
    return {
        "access_token": grants.issue_token(grant), "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME, "scope": " ".join(grant.request.scope),
        "id_token": id_token(key, grant, user),
    }  # fmt: skip


def _verifier_matches(verifier: str, challenge: str) -> bool:
    if not _VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(computed, challenge)


def id_token(key: RSAKey, grant: Grant, user: User) -> str:
    """Core §2: RS256, the key's ``kid``, five minutes of life, the nonce."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": grant.request.issuer, "sub": user.id, "aud": grant.request.client_id,
        "iat": now, "exp": now + TOKEN_LIFETIME, "auth_time": grant.auth_time,
        **user_claims(user),
    }  # fmt: skip
    if grant.request.nonce is not None:
        claims["nonce"] = grant.request.nonce
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=["RS256"])


def user_claims(user: User) -> dict[str, Any]:
    return {
        "email": user.email, "email_verified": user.email_verified, "name": user.name,
        "groups": list(user.groups),
    }  # fmt: skip


def userinfo(directory: Directory, grants: Grants, authorization: str | None) -> dict[str, Any]:
    """Core §5.3 with a Bearer access token (RFC 6750 §2.1)."""
    scheme, _, token = (authorization or "").partition(" ")
    grant = grants.token(token.strip()[:_MAX_PARAM]) if scheme.lower() == "bearer" else None
    user = directory.by_id(grant.user_id) if grant is not None else None
    if user is None:
        raise OAuthError("invalid_token", "The access token is unknown or expired.", 401)
    return {"sub": user.id, **user_claims(user)}
