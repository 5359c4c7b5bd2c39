"""Verifying a SAML Response (HTTP-POST binding) into an Identity.

An ordered list of small named checks (SAML core §2-3, profiles §4.1.4.3);
each raises its own :mod:`~hubgate.sso.saml.errors` class. Claims are read only
from the element a verified signature covers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from lxml import etree

from hubgate.sso.identity import Identity, IdpSession
from hubgate.sso.saml.config import SamlConfig
from hubgate.sso.saml.encryption import decrypt_assertion
from hubgate.sso.saml.errors import (
    AssertionExpired,
    AssertionNotYetValid,
    AssertionReplayed,
    AudienceMismatch,
    DestinationMismatch,
    EncryptionRequired,
    InResponseToMismatch,
    IssuerMismatch,
    MalformedResponse,
    RecipientMismatch,
    SignatureMissing,
    SignatureReference,
    StatusNotSuccess,
    SubjectConfirmationInvalid,
    UnexpectedStructure,
    UnsolicitedResponse,
)
from hubgate.sso.saml.signature import enveloped_signature, verify_enveloped
from hubgate.sso.saml.xml import decode, parse, parse_instant, q

__all__ = ["ReplayCache", "ResponseContext", "verify_response"]

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
_MAX_ATTRIBUTES = 100
_MAX_VALUES = 1000
_MAX_VALUE_LENGTH = 1024
_MAX_NAME_LENGTH = 256  # a NameID's Format and qualifiers, a SessionIndex
_MAX_LIFETIME = timedelta(days=1)
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"


@dataclass(frozen=True, slots=True)
class ResponseContext:
    now: datetime
    request_id: str | None
    """The id of the AuthnRequest this browser started, or ``None`` (IdP-initiated)."""


class ReplayCache(Protocol):
    def first_use(self, key: str, expires_at: datetime) -> bool:
        """Record ``key`` until ``expires_at``; ``False`` if it was already recorded."""
        ...


@dataclass(slots=True)
class _Verified:
    response: etree._Element
    assertion: etree._Element
    response_signed: bool = False
    assertion_signed: bool = False


def verify_response(
    encoded: str | bytes, config: SamlConfig, context: ResponseContext, replay: ReplayCache
) -> Identity:
    """Verify everything about the response, then hand on the Identity it asserts."""
    root = parse(decode(encoded, config.max_response_bytes))
    verified = _verify_structure_and_signatures(root, config, context.now)
    # Right after the signatures, so a replay is named as one; the caller's
    # transaction rolls the record back if a later check refuses.
    _verify_not_replayed(verified.assertion, config, context, replay)
    _verify_issuer(verified, config)
    _verify_destination(verified, config)
    _verify_in_response_to(verified, config, context)
    _verify_conditions(verified.assertion, config, context)
    _verify_subject_confirmation(verified.assertion, config, context)
    return _identity(verified.assertion, config)


def _verify_structure_and_signatures(
    root: etree._Element, config: SamlConfig, now: datetime
) -> _Verified:
    """One Response, one Assertion (after decryption), unique IDs, every signature
    enveloped in the Response or the Assertion and verified."""
    if root.tag != q("samlp", "Response") or len(list(root.iter(q("samlp", "Response")))) != 1:
        raise UnexpectedStructure()
    _verify_status(root)
    _verify_unique_ids(root)
    _verify_signatures_placed(root)
    verified = _Verified(response=root, assertion=_the_assertion(root, config))
    response_signature = enveloped_signature(root)
    if response_signature is not None:
        verify_enveloped(root, response_signature, config.idp_certificates, now)
        verified.response_signed = True
    verified.assertion = _decrypted(verified.assertion, root, config)
    assertion_signature = enveloped_signature(verified.assertion)
    if assertion_signature is not None:
        verify_enveloped(verified.assertion, assertion_signature, config.idp_certificates, now)
        verified.assertion_signed = True
    _verify_signed_as_required(verified, config)
    return verified


def _verify_unique_ids(root: etree._Element) -> None:
    """IDs are unique, and ``xml:id`` (a second ID namespace) is not used at all."""
    if any(node.get(XML_ID) is not None for node in root.iter()):
        raise SignatureReference("xml:id attributes are not accepted (ID confusion).")
    ids = Counter(node.get("ID") for node in root.iter() if node.get("ID") is not None)
    if any(count > 1 for count in ids.values()):
        raise SignatureReference("Two elements share one ID (signature wrapping).")


def _verify_signatures_placed(root: etree._Element) -> None:
    allowed_parents = {q("samlp", "Response"), q("saml", "Assertion")}
    for signature in root.iter(q("ds", "Signature")):
        parent = signature.getparent()
        if parent is None or parent.tag not in allowed_parents:
            raise SignatureReference("A signature sits outside the Response and the Assertion.")


def _the_assertion(root: etree._Element, config: SamlConfig) -> etree._Element:
    plain = list(root.iter(q("saml", "Assertion")))
    encrypted = list(root.iter(q("saml", "EncryptedAssertion")))
    if len(plain) + len(encrypted) != 1:
        raise UnexpectedStructure()
    found = (plain or encrypted)[0]
    if found.getparent() is not root:
        raise UnexpectedStructure("The Assertion must be a direct child of the Response.")
    if config.want_encrypted_assertions and not encrypted:
        raise EncryptionRequired()
    return found


def _decrypted(
    assertion: etree._Element, root: etree._Element, config: SamlConfig
) -> etree._Element:
    if assertion.tag != q("saml", "EncryptedAssertion"):
        return assertion
    decrypted = decrypt_assertion(assertion, config.sp_private_key)
    _verify_unique_ids(root)
    if len(list(root.iter(q("saml", "Assertion")))) != 1:
        raise UnexpectedStructure()
    _verify_signatures_placed(root)
    return decrypted


def _verify_signed_as_required(verified: _Verified, config: SamlConfig) -> None:
    if config.want_assertions_signed and not verified.assertion_signed:
        raise SignatureMissing("The connection requires the Assertion itself to be signed.")
    if not (verified.assertion_signed or verified.response_signed):
        raise SignatureMissing()


def _verify_status(response: etree._Element) -> None:
    code = response.find(f"{q('samlp', 'Status')}/{q('samlp', 'StatusCode')}")
    if code is None or code.get("Value") != SUCCESS:
        value = code.get("Value", "") if code is not None else "none"
        raise StatusNotSuccess(f"The identity provider answered with status {value[:120]}.")


def _verify_issuer(verified: _Verified, config: SamlConfig) -> None:
    issuer = _text(verified.assertion.find(q("saml", "Issuer")))
    if issuer != config.idp_entity_id:
        raise IssuerMismatch()
    outer = verified.response.find(q("saml", "Issuer"))
    if outer is not None and _text(outer) != config.idp_entity_id:
        raise IssuerMismatch()


def _verify_destination(verified: _Verified, config: SamlConfig) -> None:
    """SAML bindings §3.5.5.2: a signed response must name its Destination."""
    destination = verified.response.get("Destination")
    if destination is None and verified.response_signed:
        raise DestinationMismatch("A signed SAML response must carry a Destination.")
    if destination is not None and destination != config.acs_url:
        raise DestinationMismatch()


def _verify_in_response_to(
    verified: _Verified, config: SamlConfig, context: ResponseContext
) -> None:
    answered = {
        value
        for value in (
            verified.response.get("InResponseTo"),
            *(d.get("InResponseTo") for d in _confirmation_data(verified.assertion)),
        )
        if value is not None
    }
    if context.request_id is None:
        if not config.allow_idp_initiated:
            raise UnsolicitedResponse()
        if answered:
            raise InResponseToMismatch(
                "This response answers a request this browser did not start."
            )
        return
    if answered != {context.request_id}:
        raise InResponseToMismatch()


def _confirmation_data(assertion: etree._Element) -> list[etree._Element]:
    path = f"{q('saml', 'Subject')}/{q('saml', 'SubjectConfirmation')}"
    return [
        data
        for confirmation in assertion.findall(path)
        for data in confirmation.findall(q("saml", "SubjectConfirmationData"))
    ]


def _verify_subject_confirmation(
    assertion: etree._Element, config: SamlConfig, context: ResponseContext
) -> None:
    """Profiles §4.1.4.2: a bearer confirmation for this ACS, still valid."""
    path = f"{q('saml', 'Subject')}/{q('saml', 'SubjectConfirmation')}"
    for confirmation in assertion.findall(path):
        if confirmation.get("Method") != BEARER:
            continue
        for data in confirmation.findall(q("saml", "SubjectConfirmationData")):
            if data.get("Recipient") != config.acs_url:
                raise RecipientMismatch()
            until = parse_instant(data.get("NotOnOrAfter"))
            if until is None or until <= context.now - config.clock_skew:
                raise SubjectConfirmationInvalid("The bearer confirmation has expired.")
            since = parse_instant(data.get("NotBefore"))
            if since is not None and since > context.now + config.clock_skew:
                raise SubjectConfirmationInvalid("The bearer confirmation is not valid yet.")
            return
    raise SubjectConfirmationInvalid()


def _verify_conditions(
    assertion: etree._Element, config: SamlConfig, context: ResponseContext
) -> None:
    conditions = assertion.findall(q("saml", "Conditions"))
    if len(conditions) != 1:
        raise UnexpectedStructure("The Assertion must carry exactly one Conditions element.")
    since = parse_instant(conditions[0].get("NotBefore"))
    if since is not None and since > context.now + config.clock_skew:
        raise AssertionNotYetValid()
    until = parse_instant(conditions[0].get("NotOnOrAfter"))
    if until is not None and until <= context.now - config.clock_skew:
        raise AssertionExpired()
    restrictions = conditions[0].findall(q("saml", "AudienceRestriction"))
    if not restrictions:
        raise AudienceMismatch("The Assertion names no Audience.")
    for restriction in restrictions:
        audiences = {_text(a) for a in restriction.findall(q("saml", "Audience"))}
        if config.sp_entity_id not in audiences:
            raise AudienceMismatch()


def _verify_not_replayed(
    assertion: etree._Element, config: SamlConfig, context: ResponseContext, replay: ReplayCache
) -> None:
    assertion_id = assertion.get("ID")
    if not assertion_id or len(assertion_id) > 256:
        raise UnexpectedStructure("The Assertion has no usable ID.")
    instants = [parse_instant(d.get("NotOnOrAfter")) for d in _confirmation_data(assertion)] + [
        parse_instant(c.get("NotOnOrAfter")) for c in assertion.findall(q("saml", "Conditions"))
    ]
    latest = max((i for i in instants if i is not None), default=context.now)
    if latest > context.now + _MAX_LIFETIME:
        raise SubjectConfirmationInvalid("The assertion claims to stay valid for more than a day.")
    key = f"{config.connection_id}:{assertion_id}"
    if not replay.first_use(key, max(latest, context.now) + config.clock_skew):
        raise AssertionReplayed()


def _identity(assertion: etree._Element, config: SamlConfig) -> Identity:
    name_id = assertion.find(f"{q('saml', 'Subject')}/{q('saml', 'NameID')}")
    subject = _text(name_id)
    if name_id is None or not subject or len(subject) > _MAX_VALUE_LENGTH:
        raise MalformedResponse("The Assertion names no subject (NameID).")
    attributes = _attributes(assertion)
    email = _first(attributes, config.email_attributes)
    if email is None and name_id.get("Format") == EMAIL_FORMAT:
        email = subject
    statement = assertion.find(q("saml", "AuthnStatement"))
    return Identity(
        connection_id=config.connection_id,
        subject=subject,
        email=email,
        email_verified=False,
        display_name=_first(attributes, config.name_attributes),
        groups=_all(attributes, config.groups_attributes),
        attributes=attributes,
        authenticated_at=parse_instant(statement.get("AuthnInstant"))
        if statement is not None
        else None,
        session_expires_at=(
            parse_instant(statement.get("SessionNotOnOrAfter")) if statement is not None else None
        ),
        idp_session=_idp_session(name_id, subject, statement),
    )


def _idp_session(
    name_id: etree._Element, subject: str, statement: etree._Element | None
) -> IdpSession:
    """The NameID as the IdP will name it in a LogoutRequest, and its SessionIndex."""
    named = {
        "subject_format": name_id.get("Format"),
        "name_qualifier": name_id.get("NameQualifier"),
        "sp_name_qualifier": name_id.get("SPNameQualifier"),
        "session": statement.get("SessionIndex") if statement is not None else None,
    }
    if any(value is not None and len(value) > _MAX_NAME_LENGTH for value in named.values()):
        raise MalformedResponse("The Assertion's NameID or SessionIndex is too long.")
    return IdpSession(subject, **named)


def _attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    path = f"{q('saml', 'AttributeStatement')}/{q('saml', 'Attribute')}"
    found: dict[str, tuple[str, ...]] = {}
    nodes = assertion.findall(path)
    if len(nodes) > _MAX_ATTRIBUTES:
        raise MalformedResponse("The Assertion carries too many attributes.")
    for node in nodes:
        values = [_text(v) for v in node.findall(q("saml", "AttributeValue"))]
        if len(values) > _MAX_VALUES or any(len(v) > _MAX_VALUE_LENGTH for v in values):
            raise MalformedResponse("An attribute carries too many or too long values.")
        name = node.get("Name") or ""
        found[name] = found.get(name, ()) + tuple(v for v in values if v)
    return found


def _first(attributes: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> str | None:
    return next((attributes[n][0] for n in names if attributes.get(n)), None)


def _all(attributes: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> tuple[str, ...]:
    return next((attributes[n] for n in names if attributes.get(n)), ())


def _text(node: etree._Element | None) -> str:
    if node is None:
        return ""
    if len(node) == 0:  # a leaf: comments and PIs are already gone at parse time
        return (node.text or "").strip()
    return "".join(t for t in node.itertext() if isinstance(t, str)).strip()
