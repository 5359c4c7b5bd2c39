"""OIDC errors: one class per check, each with a stable reason code.

OidcError (400)
├── StateInvalid            oidc_state_invalid
├── ProviderError           oidc_provider_error
├── IssuerMismatch          oidc_issuer_mismatch
├── DiscoveryInvalid        oidc_discovery_invalid
├── TokenExchangeFailed     oidc_token_exchange_failed
├── TokenMalformed          oidc_token_malformed
├── AlgorithmRefused        oidc_algorithm_refused
├── HeaderRefused           oidc_header_refused
├── KeyNotFound             oidc_key_not_found
├── SignatureInvalid        oidc_signature_invalid
├── AudienceMismatch        oidc_audience_mismatch
├── TokenExpired            oidc_token_expired
├── TokenTimeInvalid        oidc_token_time_invalid
├── NonceMismatch           oidc_nonce_mismatch
├── SubjectMissing          oidc_subject_missing
├── UserinfoMismatch        oidc_userinfo_mismatch
└── LogoutTokenInvalid      oidc_logout_token_invalid   (Back-Channel Logout 1.0 §2.6)
    ├── LogoutTokenMalformed     oidc_logout_token_malformed
    ├── LogoutTokenEncrypted     oidc_logout_token_encrypted
    ├── LogoutHeaderRefused      oidc_logout_header_refused
    ├── LogoutAlgorithmRefused   oidc_logout_algorithm_refused
    ├── LogoutKeyNotFound        oidc_logout_key_not_found
    ├── LogoutSignatureInvalid   oidc_logout_signature_invalid
    ├── LogoutIssuerMismatch     oidc_logout_issuer_mismatch
    ├── LogoutAudienceMismatch   oidc_logout_audience_mismatch
    ├── LogoutTokenExpired       oidc_logout_token_expired
    ├── LogoutTimeInvalid        oidc_logout_time_invalid
    ├── LogoutJtiMissing         oidc_logout_jti_missing
    ├── LogoutEventMissing       oidc_logout_event_missing
    ├── LogoutSubjectMissing     oidc_logout_subject_missing
    ├── LogoutNoncePresent       oidc_logout_nonce_present
    └── LogoutReplayed           oidc_logout_replayed

BadRequest (400)
└── SettingInvalid          invalid_setting   (an admin's connection settings)
"""

from __future__ import annotations

from hubgate.errors import BadRequest, HubgateError

__all__ = [
    "AlgorithmRefused",
    "AudienceMismatch",
    "DiscoveryInvalid",
    "HeaderRefused",
    "IssuerMismatch",
    "KeyNotFound",
    "LogoutAlgorithmRefused",
    "LogoutAudienceMismatch",
    "LogoutEventMissing",
    "LogoutHeaderRefused",
    "LogoutIssuerMismatch",
    "LogoutJtiMissing",
    "LogoutKeyNotFound",
    "LogoutNoncePresent",
    "LogoutReplayed",
    "LogoutSignatureInvalid",
    "LogoutSubjectMissing",
    "LogoutTimeInvalid",
    "LogoutTokenEncrypted",
    "LogoutTokenExpired",
    "LogoutTokenInvalid",
    "LogoutTokenMalformed",
    "NonceMismatch",
    "OidcError",
    "ProviderError",
    "SettingInvalid",
    "SignatureInvalid",
    "StateInvalid",
    "SubjectMissing",
    "TokenExchangeFailed",
    "TokenExpired",
    "TokenMalformed",
    "TokenTimeInvalid",
    "UserinfoMismatch",
]


class OidcError(HubgateError):
    """An OpenID Connect sign-in was refused."""

    status = 400
    default_code = "oidc_invalid"
    default_message = "The sign-in response from the identity provider was refused."


class StateInvalid(OidcError):
    default_code = "oidc_state_invalid"
    default_message = "This sign-in was not started here, was already used, or expired."


class ProviderError(OidcError):
    default_code = "oidc_provider_error"
    default_message = "The identity provider did not sign you in."


class IssuerMismatch(OidcError):
    default_code = "oidc_issuer_mismatch"
    default_message = "The response comes from another identity provider than configured."


class DiscoveryInvalid(OidcError):
    default_code = "oidc_discovery_invalid"
    default_message = "The provider's discovery document is not usable."


class TokenExchangeFailed(OidcError):
    default_code = "oidc_token_exchange_failed"
    default_message = "The identity provider refused to exchange the authorization code."


class TokenMalformed(OidcError):
    default_code = "oidc_token_malformed"
    default_message = "The id_token is not a well-formed signed JWT."


class AlgorithmRefused(OidcError):
    default_code = "oidc_algorithm_refused"
    default_message = "The id_token is signed with an algorithm this connection does not allow."


class HeaderRefused(OidcError):
    """RFC 8725 §3.10: keys are never taken from jku/x5u/jwk/x5c; unknown crit fails."""

    default_code = "oidc_header_refused"
    default_message = "The id_token header names a key source or critical extension not accepted."


class KeyNotFound(OidcError):
    default_code = "oidc_key_not_found"
    default_message = "No key of the provider's published key set fits the id_token."


class SignatureInvalid(OidcError):
    default_code = "oidc_signature_invalid"
    default_message = "The id_token signature does not verify."


class AudienceMismatch(OidcError):
    default_code = "oidc_audience_mismatch"
    default_message = "The id_token is meant for another client (aud/azp)."


class TokenExpired(OidcError):
    default_code = "oidc_token_expired"
    default_message = "The id_token has expired."


class TokenTimeInvalid(OidcError):
    default_code = "oidc_token_time_invalid"
    default_message = "The id_token's times (iat/nbf) are missing or out of range."


class NonceMismatch(OidcError):
    default_code = "oidc_nonce_mismatch"
    default_message = "The id_token answers another sign-in (nonce)."


class SubjectMissing(OidcError):
    default_code = "oidc_subject_missing"
    default_message = "The id_token names no subject (sub)."


class UserinfoMismatch(OidcError):
    default_code = "oidc_userinfo_mismatch"
    default_message = "The userinfo answer is about another subject than the id_token."


class LogoutTokenInvalid(OidcError):
    """A logout_token was refused (Back-Channel Logout 1.0 §2.6): no session ended."""

    default_code = "oidc_logout_token_invalid"
    default_message = "The logout token was refused."


class LogoutTokenMalformed(LogoutTokenInvalid):
    default_code = "oidc_logout_token_malformed"
    default_message = "The logout_token is missing, too large, or not a well-formed signed JWT."


class LogoutTokenEncrypted(LogoutTokenInvalid):
    """§2.6 allows encrypted logout tokens; hubgate registers no encryption key,
    so a JWE is never one meant for it."""

    default_code = "oidc_logout_token_encrypted"
    default_message = "The logout_token is encrypted (JWE); only signed tokens are accepted."


class LogoutHeaderRefused(LogoutTokenInvalid):
    """RFC 8725 §3.10 and §3.11: no key from the header, no unknown crit, and an
    explicit ``typ`` must be a logout token's."""

    default_code = "oidc_logout_header_refused"
    default_message = "The logout_token header names a key source, type or extension not accepted."


class LogoutAlgorithmRefused(LogoutTokenInvalid):
    default_code = "oidc_logout_algorithm_refused"
    default_message = "The logout_token is signed with an algorithm this connection does not allow."


class LogoutKeyNotFound(LogoutTokenInvalid):
    default_code = "oidc_logout_key_not_found"
    default_message = "No key of the provider's published key set fits the logout_token."


class LogoutSignatureInvalid(LogoutTokenInvalid):
    default_code = "oidc_logout_signature_invalid"
    default_message = "The logout_token signature does not verify."


class LogoutIssuerMismatch(LogoutTokenInvalid):
    default_code = "oidc_logout_issuer_mismatch"
    default_message = "The logout_token comes from another issuer than the connection's."


class LogoutAudienceMismatch(LogoutTokenInvalid):
    default_code = "oidc_logout_audience_mismatch"
    default_message = "The logout_token is meant for another client (aud/azp)."


class LogoutTokenExpired(LogoutTokenInvalid):
    default_code = "oidc_logout_token_expired"
    default_message = "The logout_token has expired."


class LogoutTimeInvalid(LogoutTokenInvalid):
    default_code = "oidc_logout_time_invalid"
    default_message = "The logout_token's iat is missing, in the future, or too old."


class LogoutJtiMissing(LogoutTokenInvalid):
    default_code = "oidc_logout_jti_missing"
    default_message = "The logout_token has no usable jti."


class LogoutEventMissing(LogoutTokenInvalid):
    default_code = "oidc_logout_event_missing"
    default_message = "The logout_token's events claim names no back-channel logout event."


class LogoutSubjectMissing(LogoutTokenInvalid):
    default_code = "oidc_logout_subject_missing"
    default_message = "The logout_token names neither a usable sub nor a usable sid."


class LogoutNoncePresent(LogoutTokenInvalid):
    """§2.4: a nonce is prohibited, so that an id_token cannot pass for a logout token."""

    default_code = "oidc_logout_nonce_present"
    default_message = "The logout_token carries a nonce, which logout tokens never do."


class LogoutReplayed(LogoutTokenInvalid):
    default_code = "oidc_logout_replayed"
    default_message = "This logout_token (its jti) was already used."


class SettingInvalid(BadRequest):
    """A connection setting an admin gave is refused; nothing was changed."""

    default_code = "invalid_setting"
    default_message = "That value cannot be set on an OIDC connection."
