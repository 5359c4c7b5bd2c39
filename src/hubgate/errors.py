"""The error tree. Every refusal hubgate makes is one of these.

Each class carries an HTTP ``status``, a stable machine-readable ``code`` and a
default ``message`` for people. One handler module (``web/errors.py``) turns them
into a JSON body, an HTML page or (later) a SCIM error.

    HubgateError
    ├── BadRequest (400)            invalid_request, invalid_email, weak_password
    ├── Unauthenticated (401)       sign_in_required, invalid_credentials,
    │                               token_invalid, session_expired, sso_required
    ├── Forbidden (403)             forbidden, csrf_failed, email_unverified
    ├── NotFound (404)              not_found
    ├── MethodNotAllowed (405)      method_not_allowed
    ├── Conflict (409)              name_taken, email_taken, last_admin, role_mapped,
    │                               not_pinned, member_deactivated
    ├── PayloadTooLarge (413)       body_too_large
    ├── UnsupportedMediaType (415)  unsupported_media_type
    ├── TooManyRequests (429)       too_many_attempts
    ├── ServiceUnavailable (503)    unavailable
    ├── ConfigInvalid               invalid_config (the CLI)
    ├── DatabaseUnreachable         database_error (the CLI)
    └── SmtpNotConfigured           smtp_not_configured (the CLI)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "ConfigInvalid",
    "DatabaseUnreachable",
    "HubgateError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "SmtpNotConfigured",
    "TooManyRequests",
    "Unauthenticated",
    "UnsupportedMediaType",
]


class HubgateError(Exception):
    """Root of every error hubgate answers with on purpose."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Something went wrong on our side."
    audited: ClassVar[bool] = False
    """Refusals someone must be able to find later (the identity rules, an admin's
    change an org refuses): the error handler writes them to the audit log as
    ``request.refused``, in a transaction of its own, under ``audit_org`` if given."""

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        audit_org: int | None = None,
        **details: object,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.default_message
        self.audit_org = audit_org
        self.details = details
        super().__init__(self.message)

    @property
    def to_audit(self) -> bool:
        """Audited by its class, or raised about an org (``audit_org``)."""
        return self.audited or self.audit_org is not None


class BadRequest(HubgateError):
    """The request is malformed or a value is not acceptable."""

    status = 400
    default_code = "invalid_request"
    default_message = "The request is not valid."


class Unauthenticated(HubgateError):
    """No credential, or one that is wrong, expired or revoked."""

    status = 401
    default_code = "sign_in_required"
    default_message = "Sign in to continue."


class Forbidden(HubgateError):
    """The caller is known but may not do this."""

    status = 403
    default_code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFound(HubgateError):
    """Nothing by that name, or nothing the caller may know about."""

    status = 404
    default_code = "not_found"
    default_message = "Not found."


class MethodNotAllowed(HubgateError):
    """The path exists, not with this method."""

    status = 405
    default_code = "method_not_allowed"
    default_message = "Method Not Allowed"


class Conflict(HubgateError):
    """The change collides with existing state."""

    status = 409
    default_code = "conflict"
    default_message = "This conflicts with something that already exists."


class PayloadTooLarge(HubgateError):
    """The request body is over the configured limit."""

    status = 413
    default_code = "body_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(HubgateError):
    """The body is in a media type the route does not take."""

    status = 415
    default_code = "unsupported_media_type"
    default_message = "Unsupported Media Type"


class TooManyRequests(HubgateError):
    """Too many failed attempts in the current window."""

    status = 429
    default_code = "too_many_attempts"
    default_message = "Too many attempts. Wait a few minutes and try again."


class ServiceUnavailable(HubgateError):
    """The database is busy or unreachable for now; the request may be retried."""

    status = 503
    default_code = "unavailable"
    default_message = "The service is busy; try again."


class ConfigInvalid(HubgateError):
    """The settings cannot be loaded (the message names what is wrong)."""

    default_code = "invalid_config"
    default_message = "The configuration is not valid."


class DatabaseUnreachable(HubgateError):
    """The CLI cannot reach the database, or finds it not migrated."""

    default_code = "database_error"
    default_message = "The database is unreachable or not migrated (run 'hubgate db upgrade')."


class SmtpNotConfigured(HubgateError):
    """Mail was asked to go out, and no SMTP server is configured."""

    default_code = "smtp_not_configured"
    default_message = "HUBGATE_SMTP_URL is not set, so mail stays in the outbox."
