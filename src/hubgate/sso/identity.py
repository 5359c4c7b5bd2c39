"""The protocol-neutral result of a verified sign-in (DESIGN.md §1 "Identity"), and
the browser that finishes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Browser", "Identity", "IdpSession"]


@dataclass(frozen=True, slots=True)
class IdpSession:
    """How the IdP names this authentication, kept so that a logout can name it
    later, from either side (single logout, DESIGN.md §2): the SAML NameID as it
    came (value, Format, NameQualifier, SPNameQualifier) and its SessionIndex, or
    the OIDC ``sub`` and ``sid`` with the id_token itself (the ``id_token_hint``
    of an RP-initiated logout)."""

    subject: str
    subject_format: str | None = None
    name_qualifier: str | None = None
    sp_name_qualifier: str | None = None
    session: str | None = None
    id_token: str | None = None


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
    idp_session: IdpSession | None = None
    signing_certificate: str | None = None
    """SAML: the configured IdP certificate that verified the response, so a
    certificate rollover knows when the new one is in use."""


@dataclass(frozen=True, slots=True)
class Browser:
    """The browser finishing the sign-in: who it was signed in as when it started
    (the IdP's cross-site POST carries no SameSite=Lax cookie, so this is kept in
    the shared store at the start, see :func:`remember`), whether it came through
    the join link, and request facts."""

    user_id: int | None = None
    session_id: int | None = None
    join_org_id: int | None = None
    client_address: str | None = None
    user_agent: str | None = None
