"""The protocol-neutral result of a verified sign-in (DESIGN.md §1 "Identity")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """What a protocol adapter hands on after it has verified everything.

    ``subject`` is the IdP's stable name for the person (a SAML NameID, or OIDC
    ``iss`` + ``sub``); accounts are bound by (connection, subject), never by email
    alone. ``email_verified`` says whether the IdP vouches for ``email``.
    """

    connection_id: int
    subject: str
    email: str | None
    email_verified: bool
    display_name: str | None
    groups: tuple[str, ...]
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    authenticated_at: datetime | None = None
    session_expires_at: datetime | None = None
