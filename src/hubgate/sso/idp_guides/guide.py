"""What one identity provider's admin console asks for and sends, as data: where
to create the app, which of hubgate's values goes in which of its fields, the
attribute (SAML) or claim (OIDC) names for email, name and groups, and what to
bring back to hubgate. One :class:`IdpGuide` per provider; one template renders
them all."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["Attribute", "IdpGuide", "ProtocolGuide", "Setting", "SpValue"]


class SpValue(StrEnum):
    """A value of the connection that the IdP must be given (filled in by the portal)."""

    ENTITY_ID = "sp_entity_id"
    ACS_URL = "acs_url"
    SP_METADATA_URL = "sp_metadata_url"
    SLO_URL = "slo_url"
    REDIRECT_URI = "redirect_uri"
    BACKCHANNEL_LOGOUT_URI = "backchannel_logout_uri"
    POST_LOGOUT_REDIRECT_URI = "post_logout_redirect_uri"


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of the IdP's form (``field``, in its own words): either one of
    hubgate's values (``fills``) or a fixed choice (``choose``)."""

    field: str
    fills: SpValue | None = None
    choose: str = ""


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute (or claim) to send: hubgate's ``name`` for it, the IdP's
    ``source`` that fills it, and what it carries (``email``, ``name``, ``groups``)."""

    carries: Literal["email", "name", "groups"]
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class ProtocolGuide:
    """One protocol at one IdP. ``check`` lists what the guide is not sure of for
    every edition or version: the admin checks it on the test sign-in."""

    protocol: Literal["saml", "oidc"]
    create: tuple[str, ...]
    settings: tuple[Setting, ...]
    attributes: tuple[Attribute, ...]
    groups: tuple[str, ...]
    bring_back: tuple[str, ...]
    docs: str
    urls_before_metadata: bool = False
    """The IdP wants hubgate's URLs before it shows its own metadata or client id."""
    check: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IdpGuide:
    slug: str
    name: str
    saml: ProtocolGuide
    oidc: ProtocolGuide | None = None
    no_oidc: str = ""
    """Why the guide has no OIDC part, when it has none."""

    def protocol(self, kind: str) -> ProtocolGuide | None:
        return self.saml if kind == "saml" else self.oidc
