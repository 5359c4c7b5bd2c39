"""SAML errors: one class per check, each with a stable reason code and a message
an administrator understands (the person sees a short page with a trace id).

    SamlError (400)
    ├── ResponseTooLarge            saml_too_large
    ├── MalformedResponse           saml_malformed
    ├── ForbiddenXml                saml_dtd_forbidden
    ├── UnexpectedStructure         saml_structure
    ├── SignatureMissing            saml_signature_missing
    ├── SignatureInvalid            saml_signature_invalid
    ├── IdpCertificateExpired       idp_certificate_expired
    ├── SignatureAlgorithm          saml_signature_algorithm
    ├── SignatureReference          saml_signature_reference
    ├── ForbiddenTransform          saml_transform_forbidden
    ├── StatusNotSuccess            saml_status
    ├── IssuerMismatch              saml_issuer_mismatch
    ├── DestinationMismatch         saml_destination_mismatch
    ├── RecipientMismatch           saml_recipient_mismatch
    ├── AudienceMismatch            saml_audience_mismatch
    ├── InResponseToMismatch        saml_in_response_to
    ├── UnsolicitedResponse         saml_unsolicited
    ├── AssertionExpired            saml_expired
    ├── AssertionNotYetValid        saml_not_yet_valid
    ├── SubjectConfirmationInvalid  saml_subject_confirmation
    ├── AssertionReplayed           saml_replayed
    ├── EncryptionRequired          saml_encryption_required
    ├── KeyTransportForbidden       saml_key_transport_forbidden
    ├── DecryptionFailed            saml_decryption_failed
    │   Single logout (SAML core §3.7, bindings §3.4-3.5):
    ├── BindingInvalid              saml_binding
    ├── InflatedTooLarge            saml_inflated_too_large
    ├── IssueInstantInvalid         saml_issue_instant
    ├── LogoutExpired               saml_logout_expired
    ├── LogoutReplayed              saml_logout_replayed
    ├── NameIdInvalid               saml_name_id
    ├── SessionIndexInvalid         saml_session_index
    ├── LogoutNotPending            saml_logout_not_pending
    └── SingleLogoutOff             saml_logout_off
"""

from __future__ import annotations

from hubgate.errors import HubgateError

__all__ = [
    "AssertionExpired",
    "AssertionNotYetValid",
    "AssertionReplayed",
    "AudienceMismatch",
    "BindingInvalid",
    "DecryptionFailed",
    "DestinationMismatch",
    "EncryptionRequired",
    "ForbiddenTransform",
    "ForbiddenXml",
    "IdpCertificateExpired",
    "InResponseToMismatch",
    "InflatedTooLarge",
    "IssueInstantInvalid",
    "IssuerMismatch",
    "KeyTransportForbidden",
    "LogoutExpired",
    "LogoutNotPending",
    "LogoutReplayed",
    "MalformedResponse",
    "NameIdInvalid",
    "RecipientMismatch",
    "ResponseTooLarge",
    "SamlError",
    "SessionIndexInvalid",
    "SignatureAlgorithm",
    "SignatureInvalid",
    "SignatureMissing",
    "SignatureReference",
    "SingleLogoutOff",
    "StatusNotSuccess",
    "SubjectConfirmationInvalid",
    "UnexpectedStructure",
    "UnsolicitedResponse",
]


class SamlError(HubgateError):
    """A SAML response (or request) was refused."""

    status = 400
    default_code = "saml_invalid"
    default_message = "The sign-in response from the identity provider was refused."


class ResponseTooLarge(SamlError):
    status = 413
    default_code = "saml_too_large"
    default_message = "The SAML response is larger than allowed."


class MalformedResponse(SamlError):
    default_code = "saml_malformed"
    default_message = "The SAML response is not well-formed base64 XML."


class ForbiddenXml(SamlError):
    """DTDs, entities and processing tricks are never accepted (XXE, billion laughs)."""

    default_code = "saml_dtd_forbidden"
    default_message = "The SAML response contains a DTD or entity declarations."


class UnexpectedStructure(SamlError):
    """SAML core §3.2.2: one Response; hubgate accepts exactly one Assertion in it."""

    default_code = "saml_structure"
    default_message = "The SAML response must hold exactly one Response with exactly one Assertion."


class SignatureMissing(SamlError):
    default_code = "saml_signature_missing"
    default_message = "Neither the SAML response nor its assertion is signed as required."


class SignatureInvalid(SamlError):
    default_code = "saml_signature_invalid"
    default_message = "The SAML signature does not verify with the connection's IdP certificates."


class IdpCertificateExpired(SamlError):
    """The signature verifies, but only with an IdP certificate past its notAfter
    (RFC 5280 §4.1.2.5): refused, and named apart from a forged signature because
    it is what breaks a working integration most often."""

    default_code = "idp_certificate_expired"
    default_message = (
        "The identity provider signed with a certificate that has expired. "
        "An administrator must add the identity provider's new certificate."
    )


class SignatureAlgorithm(SamlError):
    default_code = "saml_signature_algorithm"
    default_message = "The SAML signature uses an algorithm that is not allowed (SHA-1, HMAC)."


class SignatureReference(SamlError):
    """The signature must reference its own parent element, once (XML signature wrapping)."""

    default_code = "saml_signature_reference"
    default_message = "The SAML signature does not cover the element that carries it."


class ForbiddenTransform(SamlError):
    default_code = "saml_transform_forbidden"
    default_message = "The SAML signature uses transforms other than enveloped and exclusive c14n."


class StatusNotSuccess(SamlError):
    default_code = "saml_status"
    default_message = "The identity provider reported that the sign-in did not succeed."


class IssuerMismatch(SamlError):
    default_code = "saml_issuer_mismatch"
    default_message = "The SAML response comes from another identity provider than configured."


class DestinationMismatch(SamlError):
    default_code = "saml_destination_mismatch"
    default_message = "The SAML response is addressed to another service provider URL."


class RecipientMismatch(SamlError):
    default_code = "saml_recipient_mismatch"
    default_message = "The SAML assertion's Recipient is not this connection's ACS URL."


class AudienceMismatch(SamlError):
    default_code = "saml_audience_mismatch"
    default_message = "The SAML assertion is meant for another service provider (Audience)."


class InResponseToMismatch(SamlError):
    default_code = "saml_in_response_to"
    default_message = "The SAML response answers a sign-in request this browser did not start."


class UnsolicitedResponse(SamlError):
    default_code = "saml_unsolicited"
    default_message = "IdP-initiated sign-in is not allowed on this connection."


class AssertionExpired(SamlError):
    default_code = "saml_expired"
    default_message = "The SAML assertion has expired."


class AssertionNotYetValid(SamlError):
    default_code = "saml_not_yet_valid"
    default_message = "The SAML assertion is not valid yet (check the clocks)."


class SubjectConfirmationInvalid(SamlError):
    default_code = "saml_subject_confirmation"
    default_message = "The SAML assertion has no valid bearer subject confirmation."


class AssertionReplayed(SamlError):
    default_code = "saml_replayed"
    default_message = "This SAML assertion was already used."


class EncryptionRequired(SamlError):
    default_code = "saml_encryption_required"
    default_message = "The connection requires encrypted assertions."


class KeyTransportForbidden(SamlError):
    default_code = "saml_key_transport_forbidden"
    default_message = (
        "The assertion is encrypted with a key transport that is not allowed (RSA1_5)."
    )


class DecryptionFailed(SamlError):
    default_code = "saml_decryption_failed"
    default_message = "The encrypted SAML assertion could not be decrypted with the SP key."


class BindingInvalid(SamlError):
    """SAML bindings §3.4.4, §3.5.4: one message, in the parameter its kind goes in,
    each parameter once."""

    default_code = "saml_binding"
    default_message = "The SAML message is not carried as its binding requires."


class InflatedTooLarge(SamlError):
    """SAML bindings §3.4.4.1: the DEFLATE-encoded message inflates beyond the
    bound (a decompression bomb is cut off, never inflated whole)."""

    status = 413
    default_code = "saml_inflated_too_large"
    default_message = "The SAML message inflates to more than allowed."


class IssueInstantInvalid(SamlError):
    """SAML core §1.3.3: the message was issued too long ago, or in the future."""

    default_code = "saml_issue_instant"
    default_message = "The SAML message's IssueInstant is outside the allowed window."


class LogoutExpired(SamlError):
    """SAML core §3.7.1: the LogoutRequest's NotOnOrAfter has passed."""

    default_code = "saml_logout_expired"
    default_message = "The logout request has expired."


class LogoutReplayed(SamlError):
    default_code = "saml_logout_replayed"
    default_message = "This SAML logout message was already used."


class NameIdInvalid(SamlError):
    """SAML core §3.7.1: a LogoutRequest names the principal by one plain NameID."""

    default_code = "saml_name_id"
    default_message = "The logout request names no usable NameID."


class SessionIndexInvalid(SamlError):
    default_code = "saml_session_index"
    default_message = "The logout request carries too many or unusable SessionIndex values."


class LogoutNotPending(SamlError):
    """SAML core §3.2.2: InResponseTo must name a LogoutRequest this browser sent."""

    default_code = "saml_logout_not_pending"
    default_message = "The logout answer is for a logout request this browser did not start."


class SingleLogoutOff(SamlError):
    default_code = "saml_logout_off"
    default_message = "Single logout is not enabled on this SAML connection."
