"""What one OIDC connection needs: the client, the provider's endpoints, claim names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from hubgate.sso.oidc.discovery import ProviderMetadata
from hubgate.sso.oidc.id_token import ALLOWED_ALGORITHMS

__all__ = ["OidcConfig", "TokenAuth"]


class TokenAuth(StrEnum):
    """Token endpoint client authentication (OpenID Connect Core §9)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"


@dataclass(frozen=True, slots=True)
class OidcConfig:
    connection_id: int
    provider: ProviderMetadata
    client_id: str
    client_secret: str
    redirect_uri: str
    token_auth: TokenAuth = TokenAuth.CLIENT_SECRET_BASIC
    private_key_pem: str = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    # Defaults that work for Okta, Entra ID, Google and Keycloak.
    email_claim: str = "email"
    email_verified_claim: str = "email_verified"
    name_claim: str = "name"
    groups_claim: str = "groups"
    algorithms: frozenset[str] = frozenset({"RS256", "ES256", "PS256"})
    clock_skew: timedelta = timedelta(seconds=120)
    rp_logout: bool = True
    """Send the browser to the provider's end_session_endpoint at sign-out
    (RP-Initiated Logout 1.0), when the provider advertises one."""

    def __post_init__(self) -> None:
        if not self.algorithms <= ALLOWED_ALGORITHMS:
            raise ValueError("Only RSA, RSA-PSS and ECDSA algorithms may be allowed.")
