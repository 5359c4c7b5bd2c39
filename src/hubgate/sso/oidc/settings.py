"""The settings an admin may give an OIDC connection, each checked strictly
before anything is stored; a refusal names the setting and changes nothing.

- ``scopes``: RFC 6749 §3.3 scope-tokens (printable ASCII without space, ``"``
  or ``\\``), ``openid`` among them (OpenID Connect Core §3.1.2.1), at most
  :data:`MAX_SCOPES` of at most :data:`MAX_SCOPE_LENGTH` characters, no repeats.
- ``algorithms``: id_token signature algorithms from the asymmetric allow-list
  only (RFC 8725 §3.1 and §3.2: never ``none``, never an HMAC that a provider's
  public key could key).
- ``email_claim``, ``email_verified_claim``, ``name_claim``, ``groups_claim``:
  claim names of 1 to :data:`MAX_CLAIM_LENGTH` printable characters, no spaces.
- ``token_auth``: client authentication at the token endpoint (Core §9).
- ``rp_logout``: a JSON boolean; whether signing out also asks the provider to
  end its session (RP-Initiated Logout 1.0), when it advertises how.
- ``client_id``, ``client_secret``: RFC 6749 Appendix A VSCHARs, bounded. The
  secret is sealed by the caller and never shown again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from hubgate.sso.oidc.config import TokenAuth
from hubgate.sso.oidc.errors import SettingInvalid
from hubgate.sso.oidc.id_token import ALLOWED_ALGORITHMS

__all__ = [
    "CLAIM_SETTINGS",
    "MAX_CLAIM_LENGTH",
    "MAX_SCOPES",
    "MAX_SCOPE_LENGTH",
    "SECRET_METHODS",
    "checked_changes",
    "checked_client_id",
    "checked_client_secret",
    "checked_issuer",
]

MAX_SCOPES = 16
MAX_SCOPE_LENGTH = 64
MAX_CLAIM_LENGTH = 128
MAX_CLIENT_ID = 256
MAX_CLIENT_SECRET = 1024
MAX_ISSUER = 2048
CLAIM_SETTINGS = ("email_claim", "email_verified_claim", "name_claim", "groups_claim")
SECRET_METHODS = frozenset({TokenAuth.CLIENT_SECRET_BASIC, TokenAuth.CLIENT_SECRET_POST})

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_CLAIM_NAME = re.compile(r"[\x21-\x7e]+")
_VSCHARS = re.compile(r"[\x20-\x7e]*")


def _refuse(name: str, why: str) -> SettingInvalid:
    return SettingInvalid(f"'{name}' {why}", setting=name)


def _scopes(value: Any) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SCOPES:
        raise _refuse("scopes", f"must be a list of 1 to {MAX_SCOPES} scopes.")
    for scope in value:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise _refuse("scopes", "holds a scope that is not an RFC 6749 scope-token.")
        if len(scope) > MAX_SCOPE_LENGTH:
            raise _refuse("scopes", f"holds a scope longer than {MAX_SCOPE_LENGTH} characters.")
    if len(set(value)) != len(value):
        raise _refuse("scopes", "names a scope twice.")
    if "openid" not in value:
        raise _refuse("scopes", "must include openid.")
    return list(value)


def _algorithms(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _refuse("algorithms", "must be a non-empty list.")
    refused = [a for a in value if not isinstance(a, str) or a not in ALLOWED_ALGORITHMS]
    if refused:
        allowed = ", ".join(sorted(ALLOWED_ALGORITHMS))
        raise _refuse("algorithms", f"may only hold {allowed}.")
    return sorted(set(value))


def _claim(name: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not _CLAIM_NAME.fullmatch(value):
            raise _refuse(name, "must be a claim name of printable characters without spaces.")
        if len(value) > MAX_CLAIM_LENGTH:
            raise _refuse(name, f"must be at most {MAX_CLAIM_LENGTH} characters.")
        return value

    return check


def _token_auth(value: Any) -> str:
    if not isinstance(value, str) or value not in {t.value for t in TokenAuth}:
        methods = ", ".join(t.value for t in TokenAuth)
        raise _refuse("token_auth", f"must be one of {methods}.")
    return TokenAuth(value).value


def _rp_logout(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse("rp_logout", "must be true or false.")
    return value


def checked_client_id(value: Any) -> str:
    """RFC 6749 A.1: 1 to 256 VSCHARs."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_ID:
        raise _refuse("client_id", f"must be 1 to {MAX_CLIENT_ID} characters.")
    if not _VSCHARS.fullmatch(value):
        raise _refuse("client_id", "may only hold printable ASCII characters.")
    return value


def checked_client_secret(value: Any) -> str:
    """RFC 6749 A.2: up to 1024 VSCHARs (empty for private_key_jwt)."""
    if not isinstance(value, str) or len(value) > MAX_CLIENT_SECRET:
        raise _refuse("client_secret", f"must be at most {MAX_CLIENT_SECRET} characters.")
    if not _VSCHARS.fullmatch(value):
        raise _refuse("client_secret", "may only hold printable ASCII characters.")
    return value


def checked_issuer(value: Any) -> str:
    """Core §2 / Discovery §4.1: an http(s) URL with a host and no query or
    fragment (https outside tests; the fetch refuses private addresses)."""
    if not isinstance(value, str) or not _VSCHARS.fullmatch(value) or len(value) > MAX_ISSUER:
        raise _refuse("issuer", f"must be a URL of at most {MAX_ISSUER} ASCII characters.")
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise _refuse("issuer", "is not a URL.") from exc
    if parts.scheme not in ("https", "http") or not host or parts.query or parts.fragment:
        raise _refuse("issuer", "must be an http(s) URL without query or fragment.")
    if " " in value or "?" in value or "#" in value:
        raise _refuse("issuer", "must be an http(s) URL without query or fragment.")
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "scopes": _scopes,
    "algorithms": _algorithms,
    "token_auth": _token_auth,
    "rp_logout": _rp_logout,
    "client_id": checked_client_id,
    "client_secret": checked_client_secret,
    **{name: _claim(name) for name in CLAIM_SETTINGS},
}


def checked_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Every change checked (all or none), as JSON-ready values."""
    unknown = sorted(set(changes) - set(_CHECKS))
    if unknown:
        raise _refuse(unknown[0], "is not a setting of an OIDC connection.")
    return {name: _CHECKS[name](value) for name, value in changes.items()}
