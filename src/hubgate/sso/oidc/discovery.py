"""OpenID Provider discovery (OpenID Connect Discovery 1.0 §4.3): the issuer in
the document must equal the configured one exactly.

Logout metadata, when advertised: ``end_session_endpoint`` (RP-Initiated Logout
1.0 §2.1), ``backchannel_logout_supported`` and
``backchannel_logout_session_supported`` (Back-Channel Logout 1.0 §2.1). They
default to absent, so metadata stored before hubgate read them still loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hubgate import bounded_json
from hubgate.sso.oidc.errors import DiscoveryInvalid, IssuerMismatch

__all__ = ["ProviderMetadata", "discovery_url", "parse_discovery"]


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    iss_parameter_supported: bool
    """RFC 9207: the provider puts ``iss`` in the authorization response."""
    end_session_endpoint: str | None = None
    backchannel_logout_supported: bool = False
    backchannel_logout_session_supported: bool = False


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_discovery(document: bytes, expected_issuer: str) -> ProviderMetadata:
    try:
        data: Any = bounded_json.loads(document)
    except bounded_json.JsonRefused as exc:
        raise DiscoveryInvalid(f"The discovery document is refused: {exc.message}") from exc
    if not isinstance(data, dict):
        raise DiscoveryInvalid()
    if data.get("issuer") != expected_issuer:
        raise IssuerMismatch(_mismatch(data.get("issuer")))
    methods = data.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise DiscoveryInvalid("The provider does not support PKCE with S256.")
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=_url(data, "authorization_endpoint"),
        token_endpoint=_url(data, "token_endpoint"),
        jwks_uri=_url(data, "jwks_uri"),
        userinfo_endpoint=_optional_url(data, "userinfo_endpoint"),
        iss_parameter_supported=data.get("authorization_response_iss_parameter_supported") is True,
        end_session_endpoint=_optional_url(data, "end_session_endpoint"),
        backchannel_logout_supported=data.get("backchannel_logout_supported") is True,
        backchannel_logout_session_supported=(
            data.get("backchannel_logout_session_supported") is True
        ),
    )


def _mismatch(named: Any) -> str:
    """Says which issuer the document names (when it is short, printable text), so
    an admin who gave another form of it (Entra's tenant by domain, a missing final
    slash) sees the one to give."""
    message = "The discovery document names another issuer than configured"
    if isinstance(named, str) and len(named) <= 256 and named.isprintable():
        return f"{message}: {named}."
    return f"{message}."


def _url(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    parts = urlsplit(value) if isinstance(value, str) and len(value) <= 2048 else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise DiscoveryInvalid(f"The discovery document has no usable {name}.")
    return str(value)


def _optional_url(data: dict[str, Any], name: str) -> str | None:
    """An endpoint the provider may leave out; when given it must be usable."""
    return _url(data, name) if name in data else None
