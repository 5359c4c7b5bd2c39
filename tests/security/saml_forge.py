"""A SAML 2.0 IdP in a test file: builds realistic Responses, signs and encrypts them.

``SamlForge`` makes what Okta or Entra ID would POST to the ACS URL (HTTP-POST
binding, SAML core §2-3, profiles §4.1.4): a ``samlp:Response`` with Issuer,
Status and one ``saml:Assertion`` (Issuer, Subject with an emailAddress NameID
and a bearer SubjectConfirmation, Conditions with an AudienceRestriction,
AuthnStatement, AttributeStatement with email, displayName and ten groups).
Every timestamp derives from one frozen instant, ``NOW``.

Signing uses the ``xmlsec`` bindings (RSA-2048, rsa-sha256, exclusive c14n,
enveloped); options make the weak or forged variants an attacker would send:
another key, rsa-sha1, hmac-sha256, a sha1 digest, extra transforms, a key in
KeyInfo. ``encrypt_assertion`` wraps the Assertion in ``saml:EncryptedAssertion``
(RSA-OAEP or RSA1_5 key transport, AES-GCM or AES-CBC) for the SP certificate.

The attack tests take ``forge.tree(...)``, rearrange the elements, and pass
``encode(root)`` to ``verify_response``.

Single logout: ``build_logout_request`` and ``build_logout_response`` make the
IdP's LogoutRequest and LogoutResponse (``LogoutClaims``); ``redirect_query``
carries one by HTTP-Redirect, signed over the query string (any SigAlg, RSA or
ECDSA, or unsigned), ``post_value`` by HTTP-POST with an enveloped signature.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal
from urllib.parse import urlencode

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree

from hubgate.sso.saml.config import SamlConfig

__all__ = [
    "ACS_URL",
    "IDP_ENTITY_ID",
    "NOW",
    "NS",
    "REQUEST_ID",
    "SP_ENTITY_ID",
    "GROUPS",
    "SLO_URL",
    "Claims",
    "LogoutClaims",
    "Credential",
    "Keys",
    "MemoryReplay",
    "SamlForge",
    "build_logout_request",
    "build_logout_response",
    "config_for",
    "encode",
    "encrypt_assertion",
    "find",
    "make_credential",
    "post_value",
    "redirect_query",
    "serialize",
    "sign",
    "session_keys",
]

# The frozen instant every response is issued at (and the verifier's "now").
NOW = datetime(2025, 6, 2, 9, 30, 0, tzinfo=UTC)
IDP_ENTITY_ID = "http://www.okta.com/exk1acme0idp0example"
IDP_SSO_URL = "https://acme.okta.example/app/hubgate/exk1acme0idp0example/sso/saml"
SP_ENTITY_ID = "https://hubgate.example/saml/acme"
ACS_URL = "https://hubgate.example/sso/saml/acme/acs"
REQUEST_ID = "_8c6e1b9d2f4a4e7f9a0b3c5d7e9f1a2b"

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
GROUPS = (
    "all-staff",
    "ml-platform",
    "ml-research",
    "model-reviewers",
    "data-science",
    "gpu-users",
    "llm-finetune",
    "eval-team",
    "inference-ops",
    "security",
)

_C = xmlsec.constants
SIGNATURE_METHODS = {
    "rsa-sha256": _C.TransformRsaSha256,
    "rsa-sha512": _C.TransformRsaSha512,
    "rsa-sha1": _C.TransformRsaSha1,
    "ecdsa-sha256": _C.TransformEcdsaSha256,
    "hmac-sha256": _C.TransformHmacSha256,
}
DIGESTS = {"sha256": _C.TransformSha256, "sha512": _C.TransformSha512, "sha1": _C.TransformSha1}
TRANSFORMS = {
    "enveloped": _C.TransformEnveloped,
    "exc-c14n": _C.TransformExclC14N,
    "exc-c14n-with-comments": _C.TransformExclC14NWithComments,
    "c14n": _C.TransformInclC14N,
    "xpath": _C.TransformXPath,
    "xslt": _C.TransformXslt,
}
CANONICALIZATIONS = {
    "exc-c14n": _C.TransformExclC14N,
    "exc-c14n-with-comments": _C.TransformExclC14NWithComments,
    "c14n": _C.TransformInclC14N,
}
KEY_TRANSPORTS = {"rsa-oaep": _C.TransformRsaOaep, "rsa1_5": _C.TransformRsaPkcs1}
CIPHERS = {
    "aes256-gcm": (_C.TransformAes256Gcm, 256),
    "aes128-gcm": (_C.TransformAes128Gcm, 128),
    "aes256-cbc": (_C.TransformAes256Cbc, 256),
    "aes128-cbc": (_C.TransformAes128Cbc, 128),
}
DEFAULT_TRANSFORMS = ("enveloped", "exc-c14n")


# --- keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """A private key and its self-signed X.509 certificate, both also as PEM."""

    name: str
    key_pem: str = field(repr=False)
    cert_pem: str = field(repr=False)


@dataclass(frozen=True)
class Keys:
    """Every credential the tests need, generated once per session."""

    idp: Credential  # the connection's IdP signing key (in config)
    idp_next: Credential  # the IdP's next key during a rollover (also in config)
    idp_ec: Credential  # an ECDSA P-256 IdP key (in config only where a test says)
    other_idp: Credential  # another org's real IdP: valid, but not this connection's
    attacker: Credential  # a key the attacker made up
    sp: Credential  # the SP's encryption key (assertions are encrypted to it)


def make_credential(
    common_name: str, *, curve: bool = False, not_after: datetime | None = None
) -> Credential:
    """An RSA-2048 (or ECDSA P-256) key with a self-signed certificate valid around NOW
    (until ``not_after`` when given, for the certificate-expiry tests)."""
    key: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if curve
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(not_after or NOW + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return Credential(common_name, key_pem, cert_pem)


@cache
def session_keys() -> Keys:
    """The session's keys (cached: RSA generation is the slow part of these tests)."""
    return Keys(
        idp=make_credential("acme.okta.example"),
        idp_next=make_credential("acme.okta.example (next)"),
        idp_ec=make_credential("acme.okta.example (ec)", curve=True),
        other_idp=make_credential("globex.okta.example"),
        attacker=make_credential("attacker.example"),
        sp=make_credential("hubgate.example"),
    )


def config_for(keys: Keys, **overrides: Any) -> SamlConfig:
    """The acme connection as an admin would configure it (IdP key and its successor)."""
    values: dict[str, Any] = {
        "connection_id": 7,
        "idp_entity_id": IDP_ENTITY_ID,
        "idp_sso_url": IDP_SSO_URL,
        "idp_certificates": (keys.idp.cert_pem, keys.idp_next.cert_pem),
        "sp_entity_id": SP_ENTITY_ID,
        "acs_url": ACS_URL,
        "sp_private_key": keys.sp.key_pem,
        "sp_certificate": keys.sp.cert_pem,
    }
    values.update(overrides)
    return SamlConfig(**values)


class MemoryReplay:
    """A ReplayCache in a dict, for unit tests (production uses the shared store)."""

    def __init__(self) -> None:
        self.seen: dict[str, datetime] = {}

    def first_use(self, key: str, expires_at: datetime) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = expires_at
        return True


# --- the response -----------------------------------------------------------------


def instant(value: datetime) -> str:
    """xs:dateTime in UTC with milliseconds, the way Okta writes it."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return f"_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Claims:
    """Everything a response says; the defaults are a valid answer to REQUEST_ID.

    Time fields are offsets from ``issued``; ``None`` leaves an attribute out.
    String fields given as ``str`` replace the generated value verbatim (hostile
    values are written into the XML exactly as given).
    """

    issued: datetime = NOW
    response_id: str = field(default_factory=new_id)
    assertion_id: str = field(default_factory=new_id)
    response_issuer: str | None = IDP_ENTITY_ID
    assertion_issuer: str | None = IDP_ENTITY_ID
    destination: str | None = ACS_URL
    recipient: str | None = ACS_URL
    audiences: tuple[str, ...] = (SP_ENTITY_ID,)
    in_response_to: str | None = REQUEST_ID
    confirmation_in_response_to: str | None = REQUEST_ID
    status: str = SUCCESS
    method: str = BEARER
    name_id: str = "ada.lovelace@acme.example"
    name_id_format: str = EMAIL_FORMAT
    email: str | None = "ada.lovelace@acme.example"
    display_name: str | None = "Ada Lovelace"
    groups: tuple[str, ...] = GROUPS
    not_before: timedelta | None = timedelta(seconds=-5)
    not_on_or_after: timedelta | None = timedelta(minutes=5)
    confirmation_not_on_or_after: timedelta | None = timedelta(minutes=5)
    session_not_on_or_after: timedelta | None = timedelta(hours=8)
    times: dict[str, str] = field(default_factory=dict)  # raw text by field, {"not_before": "x"}

    def at(self, offset: timedelta | None, raw_key: str) -> str | None:
        if raw_key in self.times:
            return self.times[raw_key]
        return None if offset is None else instant(self.issued + offset)


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrib: str | None) -> Any:
    prefix, local = tag.split(":")
    node = etree.SubElement(parent, f"{{{NS[prefix]}}}{local}")
    for key, value in attrib.items():
        if value is not None:
            node.set(key, value)
    if text is not None:
        node.text = text
    return node


def build_response(claims: Claims) -> etree._Element:
    """The unsigned ``samlp:Response`` for ``claims``."""
    response = etree.Element(
        f"{{{NS['samlp']}}}Response", nsmap={"samlp": NS["samlp"], "saml": NS["saml"]}
    )
    for key, value in (
        ("ID", claims.response_id),
        ("Version", "2.0"),
        ("IssueInstant", claims.at(timedelta(0), "response_issue_instant")),
        ("Destination", claims.destination),
        ("InResponseTo", claims.in_response_to),
    ):
        if value is not None:
            response.set(key, value)
    if claims.response_issuer is not None:
        _el(response, "saml:Issuer", claims.response_issuer)
    status = _el(response, "samlp:Status")
    _el(status, "samlp:StatusCode", Value=claims.status)
    response.append(build_assertion(claims))
    return response


def build_assertion(claims: Claims) -> etree._Element:
    """The unsigned ``saml:Assertion`` (it declares its own namespaces, as IdPs do,
    so that it stays self-contained when encrypted)."""
    assertion = etree.Element(
        f"{{{NS['saml']}}}Assertion",
        nsmap={"saml": NS["saml"], "xs": NS["xs"], "xsi": NS["xsi"]},
    )
    assertion.set("ID", claims.assertion_id)
    assertion.set("Version", "2.0")
    assertion.set("IssueInstant", claims.at(timedelta(0), "issue_instant") or "")
    if claims.assertion_issuer is not None:
        _el(assertion, "saml:Issuer", claims.assertion_issuer)
    _subject(assertion, claims)
    conditions = _el(
        assertion,
        "saml:Conditions",
        NotBefore=claims.at(claims.not_before, "not_before"),
        NotOnOrAfter=claims.at(claims.not_on_or_after, "not_on_or_after"),
    )
    if claims.audiences:
        restriction = _el(conditions, "saml:AudienceRestriction")
        for audience in claims.audiences:
            _el(restriction, "saml:Audience", audience)
    statement = _el(
        assertion,
        "saml:AuthnStatement",
        AuthnInstant=claims.at(timedelta(seconds=-30), "authn_instant"),
        SessionIndex=claims.assertion_id,
        SessionNotOnOrAfter=claims.at(claims.session_not_on_or_after, "session_not_on_or_after"),
    )
    context = _el(statement, "saml:AuthnContext")
    _el(context, "saml:AuthnContextClassRef", PASSWORD_PROTECTED)
    _attribute_statement(assertion, claims)
    return assertion


def _subject(assertion: etree._Element, claims: Claims) -> None:
    subject = _el(assertion, "saml:Subject")
    _el(subject, "saml:NameID", claims.name_id, Format=claims.name_id_format)
    confirmation = _el(subject, "saml:SubjectConfirmation", Method=claims.method)
    _el(
        confirmation,
        "saml:SubjectConfirmationData",
        InResponseTo=claims.confirmation_in_response_to,
        NotOnOrAfter=claims.at(claims.confirmation_not_on_or_after, "confirmation_not_on_or_after"),
        Recipient=claims.recipient,
    )


def _attribute_statement(assertion: etree._Element, claims: Claims) -> None:
    statement = _el(assertion, "saml:AttributeStatement")
    values = (
        ("email", (claims.email,) if claims.email is not None else ()),
        ("displayName", (claims.display_name,) if claims.display_name is not None else ()),
        ("groups", claims.groups),
    )
    unspecified = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
    for name, texts in values:
        if not texts:
            continue
        attribute = _el(statement, "saml:Attribute", Name=name, NameFormat=unspecified)
        for text in texts:
            value = _el(attribute, "saml:AttributeValue", text)
            value.set(f"{{{NS['xsi']}}}type", "xs:string")


# --- signing and encryption -----------------------------------------------------------


def find(root: etree._Element, path: str) -> Any:
    """The one element at ``path`` (prefixes from NS), e.g. ``saml:Assertion``."""
    found = root.find(path, NS)
    assert found is not None, path
    return found


def sign(
    element: etree._Element,
    credential: Credential | bytes,
    *,
    method: str = "rsa-sha256",
    digest: str = "sha256",
    transforms: Sequence[str] = DEFAULT_TRANSFORMS,
    canonicalization: str = "exc-c14n",
    key_info: bool = False,
    reference_uri: str | None = None,
) -> etree._Element:
    """Sign ``element`` with an enveloped signature placed after its Issuer.

    ``credential`` is an RSA/EC credential, or raw bytes for an HMAC secret.
    ``key_info`` embeds the signer's certificate in ``ds:KeyInfo``.
    """
    signature = xmlsec.template.create(
        element, CANONICALIZATIONS[canonicalization], SIGNATURE_METHODS[method], ns="ds"
    )
    issuer = element.find("saml:Issuer", NS)
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    uri = f"#{element.get('ID')}" if reference_uri is None else reference_uri
    reference = xmlsec.template.add_reference(signature, DIGESTS[digest], uri=uri)
    for name in transforms:
        transform = xmlsec.template.add_transform(reference, TRANSFORMS[name])
        if name == "xpath":
            xpath = etree.SubElement(transform, f"{{{NS['ds']}}}XPath")
            xpath.text = "not(ancestor-or-self::ds:Signature)"
    if key_info:
        xmlsec.template.x509_data_add_certificate(
            xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
        )
    context = xmlsec.SignatureContext()
    for node in element.getroottree().iter():
        if isinstance(node.tag, str) and node.get("ID"):
            context.register_id(node, "ID")
    context.key = _signing_key(credential, key_info)
    context.sign(signature)
    return signature


def _signing_key(credential: Credential | bytes, with_certificate: bool) -> xmlsec.Key:
    if isinstance(credential, bytes):
        return xmlsec.Key.from_binary_data(_C.KeyDataHmac, credential)
    key = xmlsec.Key.from_memory(credential.key_pem.encode(), _C.KeyDataFormatPem)
    if with_certificate:
        key.load_cert_from_memory(credential.cert_pem.encode(), _C.KeyDataFormatCertPem)
    return key


def encrypt_assertion(
    response: etree._Element,
    recipient: Credential,
    *,
    key_transport: Literal["rsa-oaep", "rsa1_5"] = "rsa-oaep",
    cipher: str = "aes256-gcm",
    content: etree._Element | None = None,
) -> etree._Element:
    """Replace the Response's Assertion by ``saml:EncryptedAssertion`` for ``recipient``.

    ``content`` encrypts another element in the Assertion's place (decryption
    oracle tests).
    """
    assertion = find(response, "saml:Assertion")
    if content is not None:
        assertion.addprevious(content)
        response.remove(assertion)
        assertion = content
    wrapper = etree.Element(f"{{{NS['saml']}}}EncryptedAssertion")
    assertion.addprevious(wrapper)
    wrapper.append(assertion)
    algorithm, bits = CIPHERS[cipher]
    template = xmlsec.template.encrypted_data_create(
        response, algorithm, type=_C.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, KEY_TRANSPORTS[key_transport])
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(recipient.cert_pem.encode(), _C.KeyDataFormatCertPem))
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(_C.KeyDataAes, bits, _C.KeyDataTypeSession)
    context.encrypt_xml(template, assertion)
    return wrapper


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def encode(document: etree._Element | bytes | str) -> str:
    """The SAMLResponse form value: base64 of the serialized XML."""
    if isinstance(document, str):
        document = document.encode()
    if not isinstance(document, bytes):
        document = serialize(document)
    return base64.b64encode(document).decode("ascii")


# --- the IdP ------------------------------------------------------------------------


@dataclass
class SamlForge:
    """Builds responses as the configured IdP (``keys.idp``) would, or as asked.

    ``tree()`` returns the signed ``samlp:Response`` element to tamper with;
    ``response()`` returns the base64 form value directly.
    """

    keys: Keys

    def claims(self, **overrides: Any) -> Claims:
        return replace(Claims(), **overrides)

    def tree(
        self,
        claims: Claims | None = None,
        *,
        sign_assertion: bool = True,
        sign_response: bool = False,
        signer: Credential | bytes | None = None,
        encrypt: dict[str, Any] | None = None,
        before_signing: Callable[[etree._Element], object] | None = None,
        **signing: Any,
    ) -> etree._Element:
        """Build, then sign the Assertion and/or the Response, then optionally encrypt.

        ``signing`` goes to :func:`sign` (method, digest, transforms, key_info...);
        ``encrypt`` to :func:`encrypt_assertion` (``{}`` for the defaults); the
        Response signature, when asked for, is made last, over the encrypted form.
        ``before_signing`` edits the Response first (hostile content the IdP signs).
        """
        response = build_response(claims or Claims())
        if before_signing is not None:
            before_signing(response)
        key = self.keys.idp if signer is None else signer
        if sign_assertion:
            sign(find(response, "saml:Assertion"), key, **signing)
        if encrypt is not None:
            options = dict(encrypt)
            encrypt_assertion(response, options.pop("to", self.keys.sp), **options)
        if sign_response:
            sign(response, key, **signing)
        # Parse again: lxml's find() does not see the nodes xmlsec created in C.
        return etree.fromstring(serialize(response))

    def response(self, claims: Claims | None = None, **options: Any) -> str:
        return encode(self.tree(claims, **options))


# --- single logout (SAML core §3.7, bindings §3.4 and §3.5) ----------------------------

SLO_URL = "https://hubgate.example/sso/saml/acme/slo"
PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
SIG_ALGS = {
    "rsa-sha256": ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", hashes.SHA256),
    "rsa-sha512": ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", hashes.SHA512),
    "rsa-sha1": ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", hashes.SHA1),
    "ecdsa-sha256": ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", hashes.SHA256),
}


@dataclass(frozen=True)
class LogoutClaims:
    """What an IdP's LogoutRequest or LogoutResponse says; the defaults are a valid
    LogoutRequest naming ada, or (with ``in_response_to``) a Success answer.
    ``None`` leaves an attribute or element out."""

    issued: datetime = NOW
    message_id: str = field(default_factory=new_id)
    issuer: str | None = IDP_ENTITY_ID
    destination: str | None = SLO_URL
    name_id: str | None = "ada.lovelace@acme.example"
    name_id_format: str | None = EMAIL_FORMAT
    session_indexes: tuple[str, ...] = ()
    not_on_or_after: timedelta | None = timedelta(minutes=5)
    issue_instant: str | None = None  # raw IssueInstant text, replacing ``issued``
    in_response_to: str | None = None
    status: str = SUCCESS
    second_status: str | None = None


def _logout_message(kind: str, claims: LogoutClaims) -> etree._Element:
    message = etree.Element(
        f"{{{NS['samlp']}}}{kind}", nsmap={"samlp": NS["samlp"], "saml": NS["saml"]}
    )
    issued = claims.issue_instant or instant(claims.issued)
    for key, value in (
        ("ID", claims.message_id), ("Version", "2.0"), ("IssueInstant", issued),
        ("Destination", claims.destination), ("InResponseTo", claims.in_response_to),
    ):  # fmt: skip
        if value is not None:
            message.set(key, value)
    if claims.issuer is not None:
        _el(message, "saml:Issuer", claims.issuer)
    return message


def build_logout_request(claims: LogoutClaims) -> etree._Element:
    """The unsigned ``samlp:LogoutRequest`` an IdP sends each SP (core §3.7.1)."""
    request = _logout_message("LogoutRequest", claims)
    if claims.not_on_or_after is not None:
        request.set("NotOnOrAfter", instant(claims.issued + claims.not_on_or_after))
    if claims.name_id is not None:
        _el(request, "saml:NameID", claims.name_id, Format=claims.name_id_format)
    for index in claims.session_indexes:
        _el(request, "samlp:SessionIndex", index)
    return request


def build_logout_response(claims: LogoutClaims) -> etree._Element:
    """The unsigned ``samlp:LogoutResponse`` an IdP answers an SP with (core §3.7.2)."""
    response = _logout_message("LogoutResponse", claims)
    status = _el(_el(response, "samlp:Status"), "samlp:StatusCode", Value=claims.status)
    if claims.second_status is not None:
        _el(status, "samlp:StatusCode", Value=claims.second_status)
    return response


def redirect_query(
    message: etree._Element | bytes,
    signer: Credential | None,
    *,
    parameter: str = "SAMLRequest",
    sig_alg: str = "rsa-sha256",
    relay_state: str | None = None,
) -> str:
    """The HTTP-Redirect query string (bindings §3.4.4.1) carrying ``message``,
    signed by ``signer`` over its exact octets (unsigned when ``None``)."""
    document = message if isinstance(message, bytes) else etree.tostring(message)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(document) + deflater.flush()
    params = [(parameter, base64.b64encode(packed).decode())]
    if relay_state is not None:
        params.append(("RelayState", relay_state))
    if signer is None:
        return urlencode(params)
    uri, digest = SIG_ALGS.get(sig_alg, (sig_alg, hashes.SHA256))
    signed = urlencode([*params, ("SigAlg", uri)])
    signature = query_signature(signed.encode(), signer, digest())
    return f"{signed}&{urlencode({'Signature': base64.b64encode(signature).decode()})}"


def query_signature(octets: bytes, signer: Credential, digest: hashes.HashAlgorithm) -> bytes:
    """RSA PKCS#1 v1.5, or ECDSA as XML-DSig writes it (r || s, RFC 4051)."""
    key = _private_key(signer.key_pem)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(octets, padding.PKCS1v15(), digest)
    r, s = decode_dss_signature(key.sign(octets, ec.ECDSA(digest)))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@cache
def _private_key(key_pem: str) -> Any:
    """Loaded once per key: loading checks the key, which costs more than signing."""
    return serialization.load_pem_private_key(key_pem.encode(), password=None)


def post_value(message: etree._Element, signer: Credential | None, **signing: Any) -> str:
    """The HTTP-POST form value (bindings §3.5.4) carrying ``message``, with an
    enveloped signature by ``signer`` (unsigned when ``None``)."""
    if signer is not None:
        sign(message, signer, **signing)
    return encode(message)
