"""SCIM errors (RFC 7644 §3.12): an HTTP status, a ``scimType`` where the RFC names
one, and a detail for people. The web layer turns them into SCIM Error documents
(``application/scim+json``).

    HubgateError
    └── ScimError                    (400 unless said)
        ├── InvalidFilter            invalidFilter
        ├── InvalidPath              invalidPath
        ├── NoTarget                 noTarget
        ├── InvalidValue             invalidValue
        ├── InvalidSyntax            invalidSyntax
        ├── Mutability               mutability
        ├── TooMany                  tooMany
        ├── Uniqueness (409)         uniqueness
        ├── ScimNotFound (404)
        ├── PreconditionFailed (412)
        └── ScimUnauthorized (401)
"""

from __future__ import annotations

from typing import ClassVar

from hubgate.errors import HubgateError

__all__ = [
    "InvalidFilter",
    "InvalidPath",
    "InvalidSyntax",
    "InvalidValue",
    "Mutability",
    "NoTarget",
    "PreconditionFailed",
    "ScimError",
    "ScimNotFound",
    "ScimUnauthorized",
    "TooMany",
    "Uniqueness",
]


class ScimError(HubgateError):
    """A refusal answered as a SCIM Error document."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None
    default_code = "scim_invalid"
    default_message = "The SCIM request is not valid."


class InvalidFilter(ScimError):
    """RFC 7644 §3.4.2.2: the filter syntax is invalid, or names an attribute or
    operator that is not supported."""

    scim_type = "invalidFilter"
    default_code = "scim_invalid_filter"
    default_message = "The filter is not valid."


class InvalidPath(ScimError):
    scim_type = "invalidPath"
    default_code = "scim_invalid_path"
    default_message = "The path attribute is not valid."


class NoTarget(ScimError):
    scim_type = "noTarget"
    default_code = "scim_no_target"
    default_message = "The path does not match any attribute or value."


class InvalidValue(ScimError):
    scim_type = "invalidValue"
    default_code = "scim_invalid_value"
    default_message = "A required value is missing or a value is not compatible."


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"
    default_code = "scim_invalid_syntax"
    default_message = "The request body is not a valid SCIM document."


class Mutability(ScimError):
    scim_type = "mutability"
    default_code = "scim_mutability"
    default_message = "That attribute cannot be changed."


class TooMany(ScimError):
    scim_type = "tooMany"
    default_code = "scim_too_many"
    default_message = "The request asks for too much at once."


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"
    default_code = "scim_uniqueness"
    default_message = "That value is already taken."


class ScimNotFound(ScimError):
    status = 404
    default_code = "scim_not_found"
    default_message = "No such resource."


class PreconditionFailed(ScimError):
    status = 412
    default_code = "scim_precondition_failed"
    default_message = "The resource changed since the version given in If-Match."


class ScimUnauthorized(ScimError):
    status = 401
    default_code = "scim_unauthorized"
    default_message = "Give this organization's SCIM bearer token."
