"""Refusals of the SSO policy (DESIGN.md §2): the identity was verified, but the
org's rules do not let it in. Each has its own reason code, audited as
``sso.login_refused`` and shown to the person with a trace id.

    Forbidden (403)
    └── SsoRefused                  sso_refused
        ├── DomainMismatch          domain_mismatch
        ├── EmailMissing            email_missing
        ├── EmailUnverified         email_unverified
        ├── AccountEmailUnverified  account_email_unverified
        ├── EmailNotOnAccount       email_not_on_account
        ├── AccountRequired         account_required
        ├── AccountMismatch         sso_account_mismatch
        ├── NotInvited              not_member
        ├── UserDeprovisioned       user_deprovisioned
        └── ConnectionInactive      connection_inactive
"""

from __future__ import annotations

from hubgate.errors import Forbidden

__all__ = [
    "AccountEmailUnverified",
    "AccountMismatch",
    "AccountRequired",
    "ConnectionInactive",
    "DomainMismatch",
    "EmailMissing",
    "EmailNotOnAccount",
    "EmailUnverified",
    "NotInvited",
    "SsoRefused",
    "UserDeprovisioned",
]


class SsoRefused(Forbidden):
    """The identity provider vouched for someone the org's policy does not admit."""

    default_code = "sso_refused"
    default_message = "Your sign-in was verified, but this organization does not admit it."


class DomainMismatch(SsoRefused):
    """The email is not in a domain this connection may sign in (another org's, or none)."""

    default_code = "domain_mismatch"
    default_message = (
        "This identity provider may not sign in that email address: its domain is not "
        "one of this organization's verified domains."
    )


class EmailMissing(SsoRefused):
    default_code = "email_missing"
    default_message = "The identity provider sent no email address for you."


class EmailUnverified(SsoRefused):
    """OIDC ``email_verified`` missing or false: the IdP does not vouch for the email."""

    default_code = "email_unverified"
    default_message = (
        "The identity provider does not vouch for your email address, so no account "
        "can be created or linked with it."
    )


class AccountEmailUnverified(SsoRefused):
    default_code = "account_email_unverified"
    default_message = (
        "An account with this email exists but has not verified it. Sign in with your "
        "password, verify the email, then use single sign-on."
    )


class EmailNotOnAccount(SsoRefused):
    default_code = "email_not_on_account"
    default_message = (
        "Your account does not hold the email address your identity provider sent. "
        "Add and verify it on your account first."
    )


class AccountRequired(SsoRefused):
    default_code = "account_required"
    default_message = (
        "This organization uses single sign-on on top of hubgate accounts: sign in to "
        "hubgate first, then use single sign-on."
    )


class AccountMismatch(SsoRefused):
    default_code = "sso_account_mismatch"
    default_message = (
        "This identity belongs to another hubgate account than the one you are signed "
        "in with. Sign out first."
    )


class NotInvited(SsoRefused):
    default_code = "not_member"
    default_message = (
        "You are not a member of this organization. Ask an admin for an invitation or "
        "the organization's join link."
    )


class UserDeprovisioned(SsoRefused):
    default_code = "user_deprovisioned"
    default_message = "Your access to this organization was removed."


class ConnectionInactive(SsoRefused):
    default_code = "connection_inactive"
    default_message = "This single sign-on connection is not active."
