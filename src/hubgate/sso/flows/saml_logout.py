"""SAML Single Logout around the protocol code (SAML profiles §4.4)."""

from __future__ import annotations

from hubgate.runtime import Runtime
from hubgate.sso.logout import Held

__all__ = ["begin"]


def begin(rt: Runtime, held: Held, browser_key: str) -> str | None:
    """The IdP URL carrying a signed LogoutRequest for ``held``, bound to the
    browser, or ``None`` when the connection's IdP takes none."""
    return None
