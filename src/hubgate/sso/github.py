"""GitHub's OAuth 2.0 web application flow (docs.github.com, "Authorizing OAuth
apps"), as pure functions: URLs and requests in, an Identity out. GitHub is no
OpenID Provider: who signed in is read from the REST API with the access token,
``GET /user`` (the numeric ``id`` is the subject: logins can be renamed) and
``GET /user/emails`` (an address counts only when ``verified`` and ``primary``).

github.com: ``https://github.com/login/oauth/{authorize,access_token}`` and the
API at ``https://api.github.com``; GitHub Enterprise Server at ``BASE`` uses
``BASE/login/oauth/...`` and ``BASE/api/v3``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from hubgate import bounded_json
from hubgate.errors import BadRequest
from hubgate.sso.identity import Identity

__all__ = [
    "GITHUB_COM",
    "ApiAnswerInvalid",
    "AuthorizationError",
    "Endpoints",
    "TokenExchangeFailed",
    "access_token",
    "authorization_url",
    "checked_base_url",
    "checked_response",
    "identity_from",
    "token_form",
]

GITHUB_COM = "https://github.com"
SCOPES = "read:user user:email"
MAX_EMAILS = 100


class AuthorizationError(BadRequest):
    """GitHub sent the browser back with an error (RFC 6749 §4.1.2.1)."""

    default_code = "github_authorization_error"
    default_message = "GitHub did not authorize this sign-in."


class TokenExchangeFailed(BadRequest):
    """The access_token endpoint answered no token (RFC 6749 §5.2)."""

    default_code = "github_token_failed"
    default_message = "GitHub did not give an access token for this sign-in."


class ApiAnswerInvalid(BadRequest):
    """``/user`` or ``/user/emails`` answered something unusable."""

    default_code = "github_api_invalid"
    default_message = "GitHub's API did not say who signed in."


@dataclass(frozen=True, slots=True)
class Endpoints:
    base_url: str
    authorize: str
    access_token: str
    api: str

    @classmethod
    def of(cls, base_url: str) -> Endpoints:
        base = base_url.rstrip("/")
        api = "https://api.github.com" if base == GITHUB_COM else f"{base}/api/v3"
        return cls(base, f"{base}/login/oauth/authorize", f"{base}/login/oauth/access_token", api)


def checked_base_url(value: str) -> str:
    """An http(s) URL with a host, no path, query or fragment (https outside tests)."""
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError as exc:
        raise _base_invalid() from exc
    if len(value) > 512 or parts.scheme not in ("https", "http") or not host:
        raise _base_invalid()
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise _base_invalid()
    return f"{parts.scheme}://{parts.netloc}"


def _base_invalid() -> BadRequest:
    return BadRequest(
        "The GitHub base URL must be like https://github.example.com.", code="setting_invalid"
    )


def authorization_url(
    endpoints: Endpoints, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    params = {
        "client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPES, "state": state,
        "allow_signup": "true", "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    return f"{endpoints.authorize}?{urlencode(params)}"


def checked_response(params: Mapping[str, str]) -> str:
    """The authorization code from GitHub's redirect, or its error."""
    if "error" in params:
        code = params["error"][:64]
        description = params.get("error_description", "")[:200]
        raise AuthorizationError(f"GitHub answered {code}: {description}".strip())
    code = params.get("code", "")
    if not code or len(code) > 512:
        raise TokenExchangeFailed("GitHub sent no authorization code.")
    return code


def token_form(
    client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
) -> dict[str, str]:
    return {
        "client_id": client_id, "client_secret": client_secret, "code": code,
        "redirect_uri": redirect_uri, "code_verifier": verifier,
    }  # fmt: skip


def access_token(body: bytes) -> str:
    """The token from the access_token endpoint's JSON answer; GitHub answers errors
    with status 200 and an ``error`` member."""
    try:
        answer: Any = bounded_json.loads(body)
    except (BadRequest, ValueError) as exc:
        raise TokenExchangeFailed() from exc
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= 1024:
        error = answer.get("error") if isinstance(answer, dict) else None
        raise TokenExchangeFailed(f"GitHub answered {str(error)[:64]} for the code.")
    return token


def identity_from(provider_id: int, endpoints: Endpoints, user: Any, emails: Any) -> Identity:
    """The Identity from ``/user`` and ``/user/emails``: subject the account's
    numeric id at this GitHub; the email vouched only when verified and primary."""
    if not isinstance(user, dict):
        raise ApiAnswerInvalid()
    number = user.get("id")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**63:
        raise ApiAnswerInvalid("GitHub's /user has no account id.")
    email, verified = _primary(emails)
    name = user.get("name") or user.get("login")
    return Identity(
        connection_id=provider_id,
        subject=f"{endpoints.base_url} {number}",
        email=email,
        email_verified=verified,
        display_name=name[:120] if isinstance(name, str) and name else None,
        groups=(),
        attributes={},
        authenticated_at=None,
        idp_session=None,
    )


def _primary(emails: Any) -> tuple[str | None, bool]:
    """The primary address, and whether GitHub verified it (only then it counts)."""
    if not isinstance(emails, list):
        raise ApiAnswerInvalid("GitHub's /user/emails is not a list.")
    for entry in emails[:MAX_EMAILS]:
        address = entry.get("email") if isinstance(entry, Mapping) else None
        if isinstance(address, str) and address and entry.get("primary") is True:
            return address[:320], entry.get("verified") is True
    return None, False
