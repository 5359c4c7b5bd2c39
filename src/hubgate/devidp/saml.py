"""The dev IdP's SAML 2.0 side: IdP metadata, the SP-initiated AuthnRequest
over HTTP-Redirect (SAML bindings §3.4), and the signed Response for the
HTTP-POST binding (SAML profiles §4.1.4.2, web browser SSO).

Which ACS a response goes to (SAML profiles §4.1.4.1): an SP listed in the
users file gets its registered ACS only (a request naming another is refused);
with ``loopback_sps`` any other SP whose entity id and requested ACS are both
loopback URLs gets the ACS it asked for. Nothing is ever sent elsewhere.

Signing uses the ``xmlsec`` bindings: enveloped signatures, exclusive c14n,
rsa-sha256, sha256 digests; the Assertion is signed, then the Response around it.
"""

from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import xmlsec
from lxml import etree

from hubgate.devidp.keys import SigningKey
from hubgate.devidp.users import Directory, SamlSp, User, is_loopback_url

__all__ = [
    "Answer",
    "AuthnRequest",
    "RequestRefused",
    "destination_for",
    "entity_id",
    "idp_metadata",
    "parse_redirect_request",
    "signed_response",
    "sso_url",
]

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
MAX_REQUEST = 16 * 1024  # the SAMLRequest parameter as sent
MAX_INFLATED = 64 * 1024
ASSERTION_LIFETIME = timedelta(minutes=5)
SESSION_LIFETIME = timedelta(hours=8)
_REQUEST_SKEW = timedelta(minutes=10)
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
    remove_comments=True, remove_pis=True,
)  # fmt: skip


class RequestRefused(ValueError):
    """The AuthnRequest cannot be answered; the message says why, for a person."""


def q(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


def entity_id(base_url: str) -> str:
    return f"{base_url}/saml/metadata"


def sso_url(base_url: str) -> str:
    return f"{base_url}/saml/sso"


# -- metadata ----------------------------------------------------------------------


def idp_metadata(base_url: str, key: SigningKey) -> bytes:
    """SAML metadata §2.4.3: the IDPSSODescriptor with the signing certificate,
    persistent NameIDs and the HTTP-Redirect SingleSignOnService."""
    root = etree.Element(q("md", "EntityDescriptor"), nsmap={"md": NS["md"], "ds": NS["ds"]})
    root.set("entityID", entity_id(base_url))
    idp = etree.SubElement(root, q("md", "IDPSSODescriptor"))
    idp.set("WantAuthnRequestsSigned", "false")
    idp.set("protocolSupportEnumeration", NS["samlp"])
    descriptor = etree.SubElement(idp, q("md", "KeyDescriptor"), use="signing")
    data = etree.SubElement(etree.SubElement(descriptor, q("ds", "KeyInfo")), q("ds", "X509Data"))
    etree.SubElement(data, q("ds", "X509Certificate")).text = _certificate_body(key.cert_pem)
    etree.SubElement(idp, q("md", "NameIDFormat")).text = PERSISTENT
    service = etree.SubElement(idp, q("md", "SingleSignOnService"), Binding=REDIRECT)
    service.set("Location", sso_url(base_url))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _certificate_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthnRequest:
    id: str
    issuer: str
    acs_url: str | None


def parse_redirect_request(encoded: str, base_url: str, now: datetime) -> AuthnRequest:
    """Bindings §3.4.4.1: base64 of raw DEFLATE, bounded before and after inflating."""
    root = _parse(_inflate(encoded))
    if root.tag != q("samlp", "AuthnRequest") or root.get("Version") != "2.0":
        raise RequestRefused("The SAMLRequest is not a SAML 2.0 AuthnRequest.")
    request_id = root.get("ID") or ""
    if not 1 <= len(request_id) <= 256 or request_id[0].isdigit() or " " in request_id:
        raise RequestRefused("The AuthnRequest has no usable ID.")
    _check_request_fields(root, base_url, now)
    issuer = root.find(q("saml", "Issuer"))
    issuer_text = (issuer.text or "").strip() if issuer is not None else ""
    if not 1 <= len(issuer_text) <= 2048:
        raise RequestRefused("The AuthnRequest names no Issuer (the SP's entity id).")
    acs = root.get("AssertionConsumerServiceURL")
    if acs is not None and len(acs) > 2048:
        raise RequestRefused("The AssertionConsumerServiceURL is too long.")
    return AuthnRequest(request_id, issuer_text, acs)


def _inflate(encoded: str) -> bytes:
    if not encoded or len(encoded) > MAX_REQUEST:
        raise RequestRefused("The SAMLRequest is missing or too large.")
    try:
        packed = base64.b64decode(encoded, validate=True)
        inflater = zlib.decompressobj(-15)
        document = inflater.decompress(packed, MAX_INFLATED)
    except (ValueError, zlib.error) as exc:  # binascii.Error, or text that is not ASCII
        raise RequestRefused("The SAMLRequest is not base64 of DEFLATE data.") from exc
    if inflater.unconsumed_tail:
        raise RequestRefused("The SAMLRequest inflates to more than allowed.")
    return document


def _parse(document: bytes) -> etree._Element:
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document:
        raise RequestRefused("The SAMLRequest carries a DTD; refused.")
    try:
        return etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise RequestRefused("The SAMLRequest is not well-formed XML.") from exc


def _check_request_fields(root: etree._Element, base_url: str, now: datetime) -> None:
    binding = root.get("ProtocolBinding")
    if binding is not None and binding != POST:
        raise RequestRefused("This IdP answers over the HTTP-POST binding only.")
    destination = root.get("Destination")
    if destination is not None and destination != sso_url(base_url):
        raise RequestRefused("The AuthnRequest was meant for another IdP (Destination).")
    issued = _instant(root.get("IssueInstant"))
    if issued is None or abs(issued - now) > _REQUEST_SKEW:
        raise RequestRefused("The AuthnRequest's IssueInstant is missing or too far from now.")


def _instant(value: str | None) -> datetime | None:
    if value is None or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def destination_for(directory: Directory, sp_entity_id: str, requested_acs: str | None) -> SamlSp:
    """The SP and the one ACS the response may go to (see the module docstring)."""
    registered = directory.saml_sp(sp_entity_id)
    if registered is not None:
        if requested_acs is not None and requested_acs != registered.acs_url:
            raise RequestRefused("The requested ACS URL is not the one registered for this SP.")
        return registered
    if not directory.loopback_sps:
        raise RequestRefused("This SP is not registered in the dev IdP's users file.")
    if requested_acs is None or not is_loopback_url(requested_acs):
        raise RequestRefused("An unregistered SP must ask for a loopback ACS URL.")
    if not is_loopback_url(sp_entity_id):
        raise RequestRefused("An unregistered SP must have a loopback entity id.")
    return SamlSp(sp_entity_id, requested_acs)


# -- the response ---------------------------------------------------------------------


def new_id() -> str:
    return "_" + secrets.token_hex(20)


def instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _element(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    prefix, local = tag.split(":")
    node = etree.SubElement(parent, q(prefix, local))
    if text is not None:
        node.text = text
    return node


@dataclass(frozen=True, slots=True)
class Answer:
    """What one response says: to whom, about whom, in answer to what."""

    sp: SamlSp
    user: User
    in_response_to: str | None
    now: datetime


def signed_response(base_url: str, key: SigningKey, answer: Answer) -> str:
    """The SAMLResponse form value: base64 of a signed Response with a signed Assertion."""
    response = _response(base_url, answer)
    assertion = _assertion(base_url, answer)
    response.append(assertion)
    _sign(assertion, key)
    _sign(response, key)
    return base64.b64encode(etree.tostring(response, encoding="UTF-8")).decode("ascii")


def _response(base_url: str, answer: Answer) -> etree._Element:
    response = etree.Element(
        q("samlp", "Response"), nsmap={"samlp": NS["samlp"], "saml": NS["saml"]}
    )
    response.set("ID", new_id())
    response.set("Version", "2.0")
    response.set("IssueInstant", instant(answer.now))
    response.set("Destination", answer.sp.acs_url)
    if answer.in_response_to is not None:
        response.set("InResponseTo", answer.in_response_to)
    _element(response, "saml:Issuer", entity_id(base_url))
    _element(_element(response, "samlp:Status"), "samlp:StatusCode").set("Value", SUCCESS)
    return response


def _assertion(base_url: str, answer: Answer) -> etree._Element:
    assertion = etree.Element(
        q("saml", "Assertion"), nsmap={"saml": NS["saml"], "xs": NS["xs"], "xsi": NS["xsi"]}
    )
    assertion_id = new_id()
    assertion.set("ID", assertion_id)
    assertion.set("Version", "2.0")
    assertion.set("IssueInstant", instant(answer.now))
    _element(assertion, "saml:Issuer", entity_id(base_url))
    _subject(assertion, base_url, answer)
    _conditions(assertion, answer)
    _authn_statement(assertion, assertion_id, answer.now)
    _attributes(assertion, answer.user)
    return assertion


def _subject(assertion: etree._Element, base_url: str, answer: Answer) -> None:
    subject = _element(assertion, "saml:Subject")
    name_id = _element(subject, "saml:NameID", answer.user.id)
    name_id.set("Format", PERSISTENT)
    name_id.set("NameQualifier", entity_id(base_url))
    name_id.set("SPNameQualifier", answer.sp.entity_id)
    confirmation = _element(subject, "saml:SubjectConfirmation")
    confirmation.set("Method", BEARER)
    data = _element(confirmation, "saml:SubjectConfirmationData")
    if answer.in_response_to is not None:
        data.set("InResponseTo", answer.in_response_to)
    data.set("NotOnOrAfter", instant(answer.now + ASSERTION_LIFETIME))
    data.set("Recipient", answer.sp.acs_url)


def _conditions(assertion: etree._Element, answer: Answer) -> None:
    conditions = _element(assertion, "saml:Conditions")
    conditions.set("NotBefore", instant(answer.now - timedelta(seconds=30)))
    conditions.set("NotOnOrAfter", instant(answer.now + ASSERTION_LIFETIME))
    restriction = _element(conditions, "saml:AudienceRestriction")
    _element(restriction, "saml:Audience", answer.sp.entity_id)


def _authn_statement(assertion: etree._Element, session_index: str, now: datetime) -> None:
    statement = _element(assertion, "saml:AuthnStatement")
    statement.set("AuthnInstant", instant(now))
    statement.set("SessionIndex", session_index)
    statement.set("SessionNotOnOrAfter", instant(now + SESSION_LIFETIME))
    context = _element(statement, "saml:AuthnContext")
    _element(context, "saml:AuthnContextClassRef", PASSWORD_PROTECTED)


def _attributes(assertion: etree._Element, user: User) -> None:
    statement = _element(assertion, "saml:AttributeStatement")
    for name, values in (
        ("email", (user.email,)),
        ("displayName", (user.name,)),
        ("groups", user.groups),
    ):
        if not values:
            continue
        attribute = _element(statement, "saml:Attribute")
        attribute.set("Name", name)
        attribute.set("NameFormat", UNSPECIFIED)
        for text in values:
            value = _element(attribute, "saml:AttributeValue", text)
            value.set(f"{{{NS['xsi']}}}type", "xs:string")


def _sign(element: etree._Element, key: SigningKey) -> None:
    """An enveloped signature right after the element's Issuer (SAML core §5.4),
    with the certificate in KeyInfo (the SP verifies against its own copy)."""
    constants = xmlsec.constants
    signature = xmlsec.template.create(
        element, constants.TransformExclC14N, constants.TransformRsaSha256, ns="ds"
    )
    issuer = element.find(q("saml", "Issuer"))
    assert issuer is not None
    issuer.addnext(signature)
    reference = xmlsec.template.add_reference(
        signature, constants.TransformSha256, uri=f"#{element.get('ID')}"
    )
    xmlsec.template.add_transform(reference, constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, constants.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
    context = xmlsec.SignatureContext()
    context.register_id(element, "ID")
    signing = xmlsec.Key.from_memory(key.key_pem.encode(), constants.KeyDataFormatPem)
    signing.load_cert_from_memory(key.cert_pem.encode(), constants.KeyDataFormatCertPem)
    context.key = signing
    context.sign(signature)
