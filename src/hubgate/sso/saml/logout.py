"""SAML Single Logout messages (SAML core §3.7, profiles §4.4): this SP's
LogoutRequest and LogoutResponse, and the IdP's, verified.

Verification is an ordered list of small named checks, each raising its own
:mod:`~hubgate.sso.saml.errors` class; what a message says is read only once
its signature verified. A signature is required by either binding: by
HTTP-Redirect the detached one over the query string
(:func:`~hubgate.sso.saml.bindings.verify_query_signature`), by HTTP-POST the
enveloped one on the message itself, through the sign-in's checks
(:func:`~hubgate.sso.saml.signature.verify_enveloped`). Keys come only from the
connection's IdP certificates. The message's ID is recorded last, once every
other check passed, so a refused message spends nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from lxml import etree

from hubgate.sso.saml.bindings import REDIRECT, Received, verify_query_signature
from hubgate.sso.saml.config import SamlConfig
from hubgate.sso.saml.errors import (
    DestinationMismatch,
    IssueInstantInvalid,
    IssuerMismatch,
    LogoutExpired,
    LogoutNotPending,
    LogoutReplayed,
    NameIdInvalid,
    SessionIndexInvalid,
    SignatureMissing,
    SignatureReference,
    UnexpectedStructure,
)
from hubgate.sso.saml.response import XML_ID, ReplayCache
from hubgate.sso.saml.signature import enveloped_signature, verify_enveloped
from hubgate.sso.saml.xml import NS, parse, parse_instant, q

__all__ = [
    "LogoutStatus",
    "NameIdentifier",
    "PendingLogouts",
    "VerifiedLogoutRequest",
    "VerifiedLogoutResponse",
    "logout_request",
    "logout_response",
    "verify_logout_request",
    "verify_logout_response",
]

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
USER_LOGOUT = "urn:oasis:names:tc:SAML:2.0:logout:user"
REQUEST_LIFETIME = timedelta(minutes=5)
TRANSIT = timedelta(minutes=1)
"""How long a message may take through the browser, on top of the clock skew."""
_MAX_ID_LENGTH = 256
_MAX_NAME_ID_LENGTH = 1024
_MAX_NAME_LENGTH = 256  # a NameID's Format and qualifiers, a SessionIndex
_MAX_SESSION_INDEXES = 16
_MAX_STATUS_LENGTH = 256


class LogoutStatus(StrEnum):
    """How a LogoutResponse answers (SAML core §3.2.2.2, §3.7.3.2)."""

    SUCCESS = "success"
    PARTIAL = "partial"  # Success, with the second-level PartialLogout
    RESPONDER = "responder"


@dataclass(frozen=True, slots=True)
class NameIdentifier:
    """A ``saml:NameID`` as the IdP gave it (SAML core §2.2.3)."""

    value: str
    format: str | None = None
    name_qualifier: str | None = None
    sp_name_qualifier: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedLogoutRequest:
    """The IdP's LogoutRequest, verified: whom and which sessions it names."""

    id: str
    name_id: NameIdentifier
    session_indexes: tuple[str, ...]
    relay_state: str | None


@dataclass(frozen=True, slots=True)
class VerifiedLogoutResponse:
    """The IdP's LogoutResponse, verified; ``status`` its top-level StatusCode and
    ``second_status`` the one nested in it."""

    id: str
    in_response_to: str
    status: str
    second_status: str | None

    @property
    def success(self) -> bool:
        return self.status == SUCCESS

    @property
    def partial(self) -> bool:
        return self.second_status == PARTIAL_LOGOUT


class PendingLogouts(Protocol):
    def spend(self, request_id: str) -> bool:
        """Take the pending LogoutRequest ``request_id`` this browser sent, once;
        ``False`` when there is none."""
        ...


# -- this SP's messages ---------------------------------------------------------------


def logout_request(
    config: SamlConfig,
    request_id: str,
    now: datetime,
    name_id: NameIdentifier,
    session_indexes: Sequence[str] = (),
) -> bytes:
    """A LogoutRequest naming ``name_id`` (as the IdP named the person) and its
    SessionIndex values, to the IdP's SingleLogoutService (core §3.7.1)."""
    if config.idp_slo is None:
        raise ValueError("The connection has no IdP SingleLogoutService.")
    request = _message("LogoutRequest", request_id, now, config.idp_slo.url)
    request.set("NotOnOrAfter", _instant(now + REQUEST_LIFETIME))
    request.set("Reason", USER_LOGOUT)
    etree.SubElement(request, q("saml", "Issuer")).text = config.sp_entity_id
    element = etree.SubElement(request, q("saml", "NameID"))
    element.text = name_id.value
    for attribute, value in (
        ("Format", name_id.format), ("NameQualifier", name_id.name_qualifier),
        ("SPNameQualifier", name_id.sp_name_qualifier),
    ):  # fmt: skip
        if value is not None:
            element.set(attribute, value)
    for index in session_indexes:
        etree.SubElement(request, q("samlp", "SessionIndex")).text = index
    return etree.tostring(request)


def logout_response(
    config: SamlConfig, response_id: str, in_response_to: str, now: datetime, status: LogoutStatus
) -> bytes:
    """A LogoutResponse to the IdP's ``in_response_to`` (core §3.7.2): Success,
    Success with the second-level PartialLogout (§3.7.3.2), or Responder."""
    if config.idp_slo is None:
        raise ValueError("The connection has no IdP SingleLogoutService.")
    response = _message("LogoutResponse", response_id, now, config.idp_slo.response_url)
    response.set("InResponseTo", in_response_to)
    etree.SubElement(response, q("saml", "Issuer")).text = config.sp_entity_id
    code = etree.SubElement(
        etree.SubElement(response, q("samlp", "Status")), q("samlp", "StatusCode")
    )
    code.set("Value", RESPONDER if status == LogoutStatus.RESPONDER else SUCCESS)
    if status == LogoutStatus.PARTIAL:
        etree.SubElement(code, q("samlp", "StatusCode")).set("Value", PARTIAL_LOGOUT)
    return etree.tostring(response)


def _message(kind: str, message_id: str, now: datetime, destination: str) -> etree._Element:
    message = etree.Element(q("samlp", kind), nsmap={"samlp": NS["samlp"], "saml": NS["saml"]})
    message.set("ID", message_id)
    message.set("Version", "2.0")
    message.set("IssueInstant", _instant(now))
    message.set("Destination", destination)
    return message


def _instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the IdP's messages ---------------------------------------------------------------


def verify_logout_request(
    received: Received, config: SamlConfig, now: datetime, replay: ReplayCache
) -> VerifiedLogoutRequest:
    """Verify the IdP's LogoutRequest, then record its ID (core §3.7.1, profiles §4.4.4.1)."""
    root = _verified_message(received, "SAMLRequest", "LogoutRequest", config, now)
    _verify_common(root, config, now)
    _verify_not_expired(root, config, now)
    verified = VerifiedLogoutRequest(
        _message_id(root), _name_id(root), _session_indexes(root), received.relay_state
    )
    _verify_not_replayed(root, config, now, replay)
    return verified


def verify_logout_response(
    received: Received,
    config: SamlConfig,
    now: datetime,
    replay: ReplayCache,
    pending: PendingLogouts,
) -> VerifiedLogoutResponse:
    """Verify the IdP's LogoutResponse to a LogoutRequest this browser sent, spend
    that request, then record the response's ID (core §3.7.2, profiles §4.4.4.2)."""
    root = _verified_message(received, "SAMLResponse", "LogoutResponse", config, now)
    _verify_common(root, config, now)
    status, second = _status(root)
    in_response_to = root.get("InResponseTo") or ""
    if not in_response_to or len(in_response_to) > _MAX_ID_LENGTH:
        raise LogoutNotPending("The logout answer names no request (InResponseTo).")
    verified = VerifiedLogoutResponse(_message_id(root), in_response_to, status, second)
    if not pending.spend(in_response_to):
        raise LogoutNotPending()
    _verify_not_replayed(root, config, now, replay)
    return verified


def _verified_message(
    received: Received, parameter: str, kind: str, config: SamlConfig, now: datetime
) -> etree._Element:
    """The one message of ``kind``, in its parameter, signed by the connection's IdP."""
    root = parse(received.document)
    if received.parameter != parameter or root.tag != q("samlp", kind):
        raise UnexpectedStructure(f"The {received.parameter} must hold one samlp:{kind}.")
    if root.get("Version") != "2.0":
        raise UnexpectedStructure("The SAML message is not SAML 2.0.")
    _verify_ids_and_signature_placement(root)
    if received.binding == REDIRECT:
        verify_query_signature(received, config.idp_certificates, now)
        return root
    signature = enveloped_signature(root)
    if signature is None:
        raise SignatureMissing("The SAML logout message carries no signature.")
    verify_enveloped(root, signature, config.idp_certificates, now)
    return root


def _verify_ids_and_signature_placement(root: etree._Element) -> None:
    """One signature at most, on the message itself; unique IDs, no ``xml:id``
    (the shapes of signature wrapping)."""
    if any(node.get(XML_ID) is not None for node in root.iter()):
        raise SignatureReference("xml:id attributes are not accepted (ID confusion).")
    ids = Counter(node.get("ID") for node in root.iter() if node.get("ID") is not None)
    if any(count > 1 for count in ids.values()):
        raise SignatureReference("Two elements share one ID (signature wrapping).")
    for signature in root.iter(q("ds", "Signature")):
        if signature.getparent() is not root:
            raise SignatureReference("A signature sits inside the logout message.")


def _verify_common(root: etree._Element, config: SamlConfig, now: datetime) -> None:
    _verify_issuer(root, config)
    _verify_destination(root, config)
    _verify_issue_instant(root, config, now)


def _verify_issuer(root: etree._Element, config: SamlConfig) -> None:
    """Profiles §4.4.4.1-2: the Issuer is present, and it is the connection's IdP."""
    issuers = root.findall(q("saml", "Issuer"))
    if len(issuers) != 1 or (issuers[0].text or "").strip() != config.idp_entity_id:
        raise IssuerMismatch()


def _verify_destination(root: etree._Element, config: SamlConfig) -> None:
    """Bindings §3.4.5.2, §3.5.5.2: a signed message names where it was sent."""
    if root.get("Destination") != config.slo_url:
        raise DestinationMismatch()


def _verify_issue_instant(root: etree._Element, config: SamlConfig, now: datetime) -> None:
    issued = parse_instant(root.get("IssueInstant"))
    if issued is None:
        raise IssueInstantInvalid("The SAML message has no IssueInstant.")
    if issued > now + config.clock_skew:
        raise IssueInstantInvalid("The SAML message is issued in the future (check the clocks).")
    if issued < now - config.clock_skew - TRANSIT:
        raise IssueInstantInvalid("The SAML message was issued too long ago.")


def _verify_not_expired(root: etree._Element, config: SamlConfig, now: datetime) -> None:
    until = parse_instant(root.get("NotOnOrAfter"))
    if until is not None and until <= now - config.clock_skew:
        raise LogoutExpired()


def _message_id(root: etree._Element) -> str:
    message_id = root.get("ID") or ""
    if not message_id or len(message_id) > _MAX_ID_LENGTH:
        raise UnexpectedStructure("The SAML message has no usable ID.")
    return message_id


def _name_id(root: etree._Element) -> NameIdentifier:
    """Core §3.7.1: exactly one plain NameID (hubgate takes no BaseID, and
    decrypts no EncryptedID: it never asks for one)."""
    found = root.findall(q("saml", "NameID"))
    others = root.findall(q("saml", "BaseID")) + root.findall(q("saml", "EncryptedID"))
    if len(found) != 1 or others:
        raise NameIdInvalid()
    node = found[0]
    value = _text(node)
    if not value or len(value) > _MAX_NAME_ID_LENGTH:
        raise NameIdInvalid("The logout request's NameID is empty or too long.")
    named = NameIdentifier(
        value, node.get("Format"), node.get("NameQualifier"), node.get("SPNameQualifier")
    )
    qualifiers = (named.format, named.name_qualifier, named.sp_name_qualifier)
    if any(v is not None and len(v) > _MAX_NAME_LENGTH for v in qualifiers):
        raise NameIdInvalid("The logout request's NameID Format or qualifier is too long.")
    return named


def _session_indexes(root: etree._Element) -> tuple[str, ...]:
    nodes = root.findall(q("samlp", "SessionIndex"))
    if len(nodes) > _MAX_SESSION_INDEXES:
        raise SessionIndexInvalid()
    values = tuple(_text(node) for node in nodes)
    if any(not value or len(value) > _MAX_NAME_LENGTH for value in values):
        raise SessionIndexInvalid("A SessionIndex is empty or too long.")
    return values


def _status(root: etree._Element) -> tuple[str, str | None]:
    code = root.find(f"{q('samlp', 'Status')}/{q('samlp', 'StatusCode')}")
    status = code.get("Value") if code is not None else None
    if code is None or not status or len(status) > _MAX_STATUS_LENGTH:
        raise UnexpectedStructure("The logout answer carries no StatusCode.")
    nested = code.find(q("samlp", "StatusCode"))
    second = nested.get("Value") if nested is not None else None
    return status, second[:_MAX_STATUS_LENGTH] if second else None


def _verify_not_replayed(
    root: etree._Element, config: SamlConfig, now: datetime, replay: ReplayCache
) -> None:
    """Last: a message is spent only once every other check let it through; it is
    remembered for as long as its IssueInstant would let it in."""
    key = f"{config.connection_id}:{_message_id(root)}"
    if not replay.first_use(key, now + 2 * config.clock_skew + TRANSIT):
        raise LogoutReplayed()


def _text(node: etree._Element) -> str:
    if len(node) != 0:
        return ""  # a NameID or SessionIndex is text only
    return (node.text or "").strip()
