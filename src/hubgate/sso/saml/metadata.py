"""SAML metadata (SAML metadata §2): reading an IdP's, writing the SP's."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from hubgate.sso.saml.errors import MalformedResponse
from hubgate.sso.saml.xml import NS, parse, q

__all__ = ["IdpMetadata", "SingleLogoutService", "parse_idp_metadata", "sp_metadata"]

REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
_MAX_CERTIFICATES = 8
_MAX_URL_LENGTH = 2048


class InvalidMetadata(MalformedResponse):
    default_code = "saml_metadata_invalid"
    default_message = "The IdP metadata is not valid SAML metadata with an HTTP-Redirect SSO URL."


@dataclass(frozen=True, slots=True)
class SingleLogoutService:
    """An IdP's SingleLogoutService endpoint (SAML metadata §2.2.2): where logout
    requests go (``location``), and its answers to ours (``response_location``,
    ``location`` when not given), by ``binding``."""

    binding: str
    location: str
    response_location: str | None = None


@dataclass(frozen=True, slots=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    certificates: tuple[str, ...]
    single_logout: SingleLogoutService | None = None


def parse_idp_metadata(document: bytes) -> IdpMetadata:
    """The IdP entity id, its HTTP-Redirect SSO URL, its signing certificates and
    its SingleLogoutService, if any."""
    root = parse(document)
    descriptor = _idp_descriptor(root)
    entity = descriptor.getparent()
    entity_id = entity.get("entityID") if entity is not None else None
    redirect = [
        s.get("Location")
        for s in descriptor.findall(q("md", "SingleSignOnService"))
        if s.get("Binding") == REDIRECT and s.get("Location")
    ]
    certificates = _signing_certificates(descriptor)
    if not entity_id or not redirect or not certificates:
        raise InvalidMetadata()
    return IdpMetadata(entity_id, str(redirect[0]), certificates, _single_logout(descriptor))


def _single_logout(descriptor: etree._Element) -> SingleLogoutService | None:
    """The IdP's SingleLogoutService: HTTP-Redirect preferred, HTTP-POST accepted,
    other bindings (SOAP, Artifact) ignored; one with an unusable URL is invalid."""
    found: dict[str, SingleLogoutService] = {}
    for service in descriptor.findall(q("md", "SingleLogoutService")):
        binding = service.get("Binding")
        if binding not in (REDIRECT, POST) or binding in found:
            continue
        location, answers = service.get("Location"), service.get("ResponseLocation")
        if not _usable_url(location) or (answers is not None and not _usable_url(answers)):
            raise InvalidMetadata("A SingleLogoutService has no usable http(s) Location.")
        assert location is not None
        found[binding] = SingleLogoutService(binding, location, answers)
    return found.get(REDIRECT) or found.get(POST)


def _usable_url(value: str | None) -> bool:
    return (
        value is not None
        and value.startswith(("https://", "http://"))
        and len(value) <= _MAX_URL_LENGTH
        and not any(c.isspace() or ord(c) < 32 for c in value)
    )


def _idp_descriptor(root: etree._Element) -> etree._Element:
    if root.tag == q("md", "EntityDescriptor"):
        entities = [root]
    else:
        entities = root.findall(q("md", "EntityDescriptor"))
    descriptors = [d for e in entities for d in e.findall(q("md", "IDPSSODescriptor"))]
    if len(descriptors) != 1:
        raise InvalidMetadata("The metadata must describe exactly one identity provider.")
    return descriptors[0]


def _signing_certificates(descriptor: etree._Element) -> tuple[str, ...]:
    found: list[str] = []
    for key in descriptor.findall(q("md", "KeyDescriptor")):
        if key.get("use") not in (None, "signing"):
            continue
        for cert in key.iter(q("ds", "X509Certificate")):
            body = "".join((cert.text or "").split())
            if body:
                found.append(pem_certificate(body))
    return tuple(dict.fromkeys(found))[:_MAX_CERTIFICATES]


def pem_certificate(base64_body: str) -> str:
    lines = [base64_body[i : i + 64] for i in range(0, len(base64_body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def certificate_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


def sp_metadata(
    entity_id: str,
    acs_url: str,
    certificate_pem: str,
    *,
    want_assertions_signed: bool,
    authn_requests_signed: bool,
    slo_url: str | None = None,
) -> bytes:
    """The SP's metadata: entity id, ACS (HTTP-POST), its signing and encryption
    keys, and, given ``slo_url``, its SingleLogoutService (HTTP-Redirect and
    HTTP-POST at the one URL)."""
    md = NS["md"]
    entity = etree.Element(q("md", "EntityDescriptor"), nsmap={"md": md, "ds": NS["ds"]})
    entity.set("entityID", entity_id)
    sp = etree.SubElement(entity, q("md", "SPSSODescriptor"))
    sp.set("AuthnRequestsSigned", "true" if authn_requests_signed else "false")
    sp.set("WantAssertionsSigned", "true" if want_assertions_signed else "false")
    sp.set("protocolSupportEnumeration", NS["samlp"])
    for use in ("signing", "encryption"):
        key = etree.SubElement(sp, q("md", "KeyDescriptor"), use=use)
        data = etree.SubElement(etree.SubElement(key, q("ds", "KeyInfo")), q("ds", "X509Data"))
        etree.SubElement(data, q("ds", "X509Certificate")).text = certificate_body(certificate_pem)
    if slo_url is not None:
        for binding in (REDIRECT, POST):
            etree.SubElement(sp, q("md", "SingleLogoutService"), Binding=binding, Location=slo_url)
    name_id = etree.SubElement(sp, q("md", "NameIDFormat"))
    name_id.text = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    acs = etree.SubElement(sp, q("md", "AssertionConsumerService"), Binding=POST, index="0")
    acs.set("Location", acs_url)
    acs.set("isDefault", "true")
    return etree.tostring(entity, xml_declaration=True, encoding="UTF-8")
