"""The named states of an org's SSO, shared by its services, the API's documents
and the CLI. Each is a ``StrEnum`` whose values are what the database stores, so a
member compares equal to the stored string (no migration).

    ConnectionKind   saml, oidc
    ConnectionState  draft -> verified -> active <-> inactive
    SsoModeName      off, basic, basic-optional, managed (the API's and CLI's spelling)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConnectionKind", "ConnectionState", "SsoModeName"]


class ConnectionKind(StrEnum):
    """The protocol an SSO connection speaks."""

    SAML = "saml"
    OIDC = "oidc"


class ConnectionState(StrEnum):
    """Where an SSO connection is in its life (DESIGN.md §1 "SSO connection").

    ``DRAFT``: created, no sign-in through it verified yet. ``VERIFIED``: a test
    sign-in verified; an admin may activate it. ``ACTIVE``: it signs the org's
    people in. ``INACTIVE``: deactivated; one that was verified may be activated
    again."""

    DRAFT = "draft"
    VERIFIED = "verified"
    ACTIVE = "active"
    INACTIVE = "inactive"


class SsoModeName(StrEnum):
    """An org's SSO mode as the API and the CLI spell it: ``basic-optional`` is
    basic mode whose SSO is offered, not required (``policy.MODE_NAMES``)."""

    OFF = "off"
    BASIC = "basic"
    BASIC_OPTIONAL = "basic-optional"
    MANAGED = "managed"
