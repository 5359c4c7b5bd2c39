"""Per-IdP setup guides: one :class:`IdpGuide` per identity provider, rendered by
one template in the setup portal and in ``docs/idp-guides.md``."""

from __future__ import annotations

from dataclasses import fields

from hubgate.sso.idp_guides import authentik, entra, google, jumpcloud, keycloak, okta, onelogin
from hubgate.sso.idp_guides.guide import Attribute, IdpGuide, ProtocolGuide, Setting, SpValue
from hubgate.sso.oidc.config import OidcConfig
from hubgate.sso.saml.config import DEFAULT_ATTRIBUTES

__all__ = [
    "GUIDES",
    "Attribute",
    "IdpGuide",
    "ProtocolGuide",
    "Setting",
    "SpValue",
    "find",
    "read_by_default",
]

GUIDES: dict[str, IdpGuide] = {
    g.slug: g
    for g in (
        okta.GUIDE,
        entra.GUIDE,
        google.GUIDE,
        onelogin.GUIDE,
        jumpcloud.GUIDE,
        keycloak.GUIDE,
        authentik.GUIDE,
    )
}


def find(slug: str | None) -> IdpGuide | None:
    """The guide named ``slug``, or None for no or an unknown name."""
    return GUIDES.get(slug or "")


def read_by_default(protocol: str) -> frozenset[str]:
    """``carries:name`` for each attribute (SAML) or claim (OIDC) name hubgate
    reads without being told: a guide's other names go in the portal's step 2."""
    if protocol == "saml":
        return frozenset(f"{k}:{n}" for k, names in DEFAULT_ATTRIBUTES.items() for n in names)
    defaults = {f.name: f.default for f in fields(OidcConfig)}
    return frozenset(f"{k}:{defaults[f'{k}_claim']}" for k in ("email", "name", "groups"))
