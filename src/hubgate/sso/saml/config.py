"""What verifying a response needs to know about one SAML connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["DEFAULT_ATTRIBUTES", "IdpSingleLogout", "SamlConfig"]

# Attribute names that work for Okta, Entra ID, Google Workspace and SimpleSAMLphp.
DEFAULT_ATTRIBUTES = {
    "email": (
        "email",
        "mail",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ),
    "name": (
        "displayName",
        "name",
        "http://schemas.microsoft.com/identity/claims/displayname",
        "urn:oid:2.16.840.1.113730.3.1.241",
    ),
    "groups": (
        "groups",
        "memberOf",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    ),
}


@dataclass(frozen=True, slots=True)
class SamlConfig:
    """One connection's SAML settings (IdP side, SP side, flags)."""

    connection_id: int
    idp_entity_id: str
    idp_sso_url: str
    idp_certificates: tuple[str, ...]
    sp_entity_id: str
    acs_url: str
    sp_private_key: str = ""
    sp_certificate: str = ""
    email_attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES["email"]
    name_attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES["name"]
    groups_attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES["groups"]
    want_assertions_signed: bool = True
    want_encrypted_assertions: bool = False
    sign_authn_requests: bool = False
    allow_idp_initiated: bool = False
    clock_skew: timedelta = timedelta(seconds=120)
    max_response_bytes: int = 256 * 1024
    slo_url: str = ""
    """The SP's SingleLogoutService (both bindings): the Destination of the IdP's
    logout messages to this connection."""
    idp_slo: IdpSingleLogout | None = None
    """The IdP's SingleLogoutService, when single logout is on for the connection."""


@dataclass(frozen=True, slots=True)
class IdpSingleLogout:
    """Where this SP sends its logout requests (``url``) and its answers to the
    IdP's (``response_url``), by ``binding`` (HTTP-Redirect or HTTP-POST)."""

    binding: str
    url: str
    response_url: str
