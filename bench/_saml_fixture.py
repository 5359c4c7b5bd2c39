"""A realistic signed SAML Response for benchmarks, shaped like Microsoft Entra ID's.

One RSA-2048 identity-provider key and self-signed certificate (made here with
``cryptography``), an Assertion with an enveloped RSA-SHA256 / SHA-256 signature
over exclusive c14n and the certificate in ``KeyInfo``, and ten attributes under
Entra's claim names, ``groups`` carrying ten object ids: about 6 KB of XML, as
Entra and Okta send with a groups claim.

Typical use::

    idp = make_idp()
    fixture = signed_response(idp, issued_at=datetime.now(UTC).replace(microsecond=0))
    fixture.encoded  # the base64 SAMLResponse form value
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

__all__ = ["SAML_NS", "Fixture", "Idp", "make_idp", "signed_response"]

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
TENANT = "6f1c2a9e-4d3b-4c1a-9b7e-2f5d8a0c3e41"
IDP_ENTITY_ID = f"https://sts.windows.net/{TENANT}/"
IDP_SSO_URL = f"https://login.microsoftonline.com/{TENANT}/saml2"
SP_ENTITY_ID = "https://hub.example.com/sso/saml/7/metadata"
ACS_HOST = "hub.example.com"
ACS_PATH = "/sso/saml/7/acs"
ACS_URL = f"https://{ACS_HOST}{ACS_PATH}"
REQUEST_ID = "_hg9c4f1e0b7a2d4e6f8a1b3c5d7e9f0a2b"
EMAIL = "maria.kowalska@acme-robotics.example"
GROUPS = tuple(str(uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0000 + k)) for k in range(10))
_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
_MS_CLAIMS = "http://schemas.microsoft.com/identity/claims"
_ATTRIBUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (f"{_MS_CLAIMS}/tenantid", (TENANT,)),
    (f"{_MS_CLAIMS}/objectidentifier", ("0b5e7c3a-91d4-4f2e-8a6b-3c7d9e1f2a4b",)),
    (f"{_MS_CLAIMS}/displayname", ("Maria Kowalska",)),
    (f"{_MS_CLAIMS}/identityprovider", (IDP_ENTITY_ID,)),
    (
        "http://schemas.microsoft.com/claims/authnmethodsreferences",
        ("http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",),
    ),
    (f"{_CLAIMS}/givenname", ("Maria",)),
    (f"{_CLAIMS}/surname", ("Kowalska",)),
    (f"{_CLAIMS}/emailaddress", (EMAIL,)),
    (f"{_CLAIMS}/name", (EMAIL,)),
    ("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", GROUPS),
)


@dataclass(frozen=True, slots=True)
class Idp:
    """The identity provider's signing key and certificate, both PEM."""

    key_pem: bytes
    cert_pem: str


@dataclass(frozen=True, slots=True)
class Fixture:
    """One signed response and the instants it was issued around."""

    xml: bytes
    encoded: bytes
    issued_at: datetime
    not_on_or_after: datetime
    assertion_id: str


def make_idp() -> Idp:
    """A fresh RSA-2048 key and a self-signed certificate valid for a year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Microsoft Azure Federated SSO Certificate")]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Idp(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode())


def signed_response(
    idp: Idp, *, issued_at: datetime, lifetime: timedelta = timedelta(minutes=60)
) -> Fixture:
    """An SP-initiated, successful response answering ``REQUEST_ID``, valid from
    five minutes before ``issued_at`` until ``issued_at + lifetime`` (Entra's shape)."""
    response_id, assertion_id = f"_{uuid.uuid4()}", f"_{uuid.uuid4()}"
    until = issued_at + lifetime
    root = etree.fromstring(_unsigned(response_id, assertion_id, issued_at, until).encode())
    assertion = root.find(f"{{{SAML_NS}}}Assertion")
    assert assertion is not None
    _sign(assertion, assertion_id, idp)
    xml = etree.tostring(root)
    return Fixture(
        xml=xml,
        encoded=base64.b64encode(xml),
        issued_at=issued_at,
        not_on_or_after=until,
        assertion_id=assertion_id,
    )


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unsigned(response_id: str, assertion_id: str, issued: datetime, until: datetime) -> str:
    attributes = "".join(
        f'<Attribute Name="{name}">'
        + "".join(f"<AttributeValue>{value}</AttributeValue>" for value in values)
        + "</Attribute>"
        for name, values in _ATTRIBUTES
    )
    return (
        f'<samlp:Response ID="{response_id}" Version="2.0" IssueInstant="{_instant(issued)}" '
        f'Destination="{ACS_URL}" InResponseTo="{REQUEST_ID}" '
        'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<Issuer xmlns="{SAML_NS}">{IDP_ENTITY_ID}</Issuer>'
        '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        "</samlp:Status>"
        f'<Assertion ID="{assertion_id}" IssueInstant="{_instant(issued)}" Version="2.0" '
        f'xmlns="{SAML_NS}">'
        f"<Issuer>{IDP_ENTITY_ID}</Issuer>"
        "<Subject>"
        f'<NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{EMAIL}</NameID>'
        '<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<SubjectConfirmationData InResponseTo="{REQUEST_ID}" '
        f'NotOnOrAfter="{_instant(until)}" Recipient="{ACS_URL}"/>'
        "</SubjectConfirmation></Subject>"
        f'<Conditions NotBefore="{_instant(issued - timedelta(minutes=5))}" '
        f'NotOnOrAfter="{_instant(until)}">'
        f"<AudienceRestriction><Audience>{SP_ENTITY_ID}</Audience></AudienceRestriction>"
        "</Conditions>"
        f"<AttributeStatement>{attributes}</AttributeStatement>"
        f'<AuthnStatement AuthnInstant="{_instant(issued - timedelta(seconds=2))}" '
        f'SessionIndex="{assertion_id}">'
        "<AuthnContext><AuthnContextClassRef>"
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        "</AuthnContextClassRef></AuthnContext></AuthnStatement>"
        "</Assertion></samlp:Response>"
    )


def _sign(assertion: etree._Element, assertion_id: str, idp: Idp) -> None:
    """Enveloped signature right after the Assertion's Issuer, certificate in KeyInfo,
    base64 unwrapped and no whitespace between elements (as Entra sends it)."""
    signature = xmlsec.template.create(
        assertion, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
    )
    assertion.insert(1, signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=f"#{assertion_id}"
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    for node in signature.iter():  # Entra writes its signature on one line
        node.text = None if node.text and not node.text.strip() else node.text
        node.tail = None if node.tail and not node.tail.strip() else node.tail
    context = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(idp.key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(idp.cert_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    context.key = key
    context.register_id(assertion, "ID")
    line_size = xmlsec.base64_default_line_size()
    xmlsec.base64_default_line_size(1 << 16)
    try:
        context.sign(signature)
    finally:
        xmlsec.base64_default_line_size(line_size)
