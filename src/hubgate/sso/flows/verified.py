"""What a protocol adapter hands the SSO policy (DESIGN.md §2): the verified
Identity, the connection it came through, and where the browser goes next."""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.sso.connections import Through
from hubgate.sso.identity import Identity

__all__ = ["Verified"]


@dataclass(frozen=True, slots=True)
class Verified:
    connection: Through
    identity: Identity
    next: str
