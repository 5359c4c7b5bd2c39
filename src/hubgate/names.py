"""Names: org, team and resource slugs (DESIGN.md §4)."""

from __future__ import annotations

import re

from hubgate.errors import BadRequest

__all__ = [
    "RESERVED",
    "check_org_name",
    "check_resource_name",
    "check_team_name",
    "display_name",
    "is_resource_name",
    "is_slug",
]

RESERVED = frozenset(
    {
        "login", "logout", "signup", "sso", "setup", "scim", "api", "auth", "healthz",
        "metrics", "static", "settings", "verify-email", "orgs", "new", "admin", "me",
        "docs", "openapi.json", "favicon.ico", "robots.txt", "www", "hubgate", "account",
        "forgot-password", "reset-password",
    }
)  # fmt: skip
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_RESOURCE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


def display_name(value: str | None, fallback: str) -> str:
    """A display name for a person, org or team: printable, up to 120 characters."""
    label = (value or "").strip() or fallback
    if len(label) > 120 or not label.isprintable():
        raise BadRequest("Display names are up to 120 printable characters.", code="invalid_name")
    return label


def is_slug(name: str) -> bool:
    """Whether ``name`` can be an org or team name (lookups of others answer 404)."""
    return bool(_SLUG.match(name))


def is_resource_name(name: str) -> bool:
    return bool(_RESOURCE.match(name)) and ".." not in name


def check_org_name(name: str) -> str:
    if not isinstance(name, str) or not _SLUG.match(name) or "--" in name:
        raise BadRequest(
            "Organization names are 1-64 lowercase letters, digits and single dashes.",
            code="invalid_name",
        )
    if name in RESERVED:
        raise BadRequest(f"'{name}' is reserved; choose another name.", code="name_reserved")
    return name


def check_team_name(name: str) -> str:
    if not isinstance(name, str) or not _SLUG.match(name):
        raise BadRequest(
            "Team names are 1-64 lowercase letters, digits and dashes.", code="invalid_name"
        )
    return name


def check_resource_name(name: str) -> str:
    if not isinstance(name, str) or not is_resource_name(name):
        raise BadRequest(
            "Resource names are 1-96 letters, digits, '.', '_' or '-', starting and ending "
            "with a letter or digit.",
            code="invalid_name",
        )
    return name
