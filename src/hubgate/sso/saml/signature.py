"""XML signature checks for SAML (SAML core §5, XML-DSig) through the xmlsec bindings.

Before xmlsec verifies anything, the signature's shape is checked: it must be
a direct child of the element it signs, carry exactly one Reference to that
element's ID, use only the enveloped-signature and exclusive c14n transforms,
and an allow-listed algorithm. The key is only ever one of the connection's
configured certificates; a key in ``KeyInfo`` is never used.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from hubgate.sso.saml.errors import (
    ForbiddenTransform,
    IdpCertificateExpired,
    SignatureAlgorithm,
    SignatureInvalid,
    SignatureReference,
)
from hubgate.sso.saml.xml import (
    ALLOWED_DIGESTS,
    ALLOWED_SIGNATURES,
    ALLOWED_TRANSFORMS,
    EXC_C14N,
    Path,
    q,
)

__all__ = ["enveloped_signature", "verify_enveloped"]

# Paths compiled once rather than on every call (see xml.Path).
_SIGNATURES = Path("ds:Signature")
_SIGNED_INFO = q("ds", "SignedInfo")
_CANONICALIZATION_METHOD = q("ds", "CanonicalizationMethod")
_SIGNATURE_METHOD = q("ds", "SignatureMethod")
_REFERENCE = q("ds", "Reference")
_TRANSFORM = q("ds", "Transform")
_DIGEST_METHOD = q("ds", "DigestMethod")
# Every part of a signature _check_shape reads, found in one evaluation rather than
# one per part. Each branch ends in a name no other branch ends in, so a node's tag
# says which branch found it: the parts come out as separate paths would give them.
_SHAPE = Path(
    "ds:SignedInfo"
    " | ds:SignedInfo/ds:CanonicalizationMethod"
    " | ds:SignedInfo/ds:SignatureMethod"
    " | ds:SignedInfo/ds:Reference"
    " | ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform"
    " | ds:SignedInfo/ds:Reference/ds:DigestMethod"
)
_SHAPE_TAGS = (
    _SIGNED_INFO,
    _CANONICALIZATION_METHOD,
    _SIGNATURE_METHOD,
    _REFERENCE,
    _TRANSFORM,
    _DIGEST_METHOD,
)


def enveloped_signature(element: etree._Element) -> etree._Element | None:
    """The element's own ds:Signature (a direct child), if any."""
    found = _SIGNATURES.all(element)
    if len(found) > 1:
        raise SignatureReference("An element carries more than one signature.")
    return found[0] if found else None


def verify_enveloped(
    element: etree._Element,
    signature: etree._Element,
    certificates: tuple[str, ...],
    now: datetime,
) -> str:
    """Verify ``signature`` over ``element`` with one of ``certificates`` still
    valid at ``now``; the one that verified it (a rollover retires the old one
    once the new one has). A signature that verifies only with an expired
    certificate is refused all the same, as :class:`IdpCertificateExpired`, and so
    is any signature once every certificate has expired (the IdP then most likely
    signs with a new certificate hubgate was never given): the admin reads "add
    the new certificate" instead of "forged signature"."""
    _check_shape(element, signature)
    current = tuple(pem for pem in certificates if not _expired(pem, now))
    verified = _verifying(element, signature, current)
    if verified is not None:
        return verified
    expired = tuple(pem for pem in certificates if pem not in current)
    if expired and (not current or _verifying(element, signature, expired) is not None):
        raise IdpCertificateExpired()
    raise SignatureInvalid()


def _verifying(
    element: etree._Element, signature: etree._Element, certificates: tuple[str, ...]
) -> str | None:
    """The first of ``certificates`` whose key verifies ``signature``, if any."""
    for certificate in certificates:
        context = xmlsec.SignatureContext()
        context.key = _key(certificate)
        try:
            context.register_id(element, "ID")
            context.verify(signature)
        except xmlsec.Error:
            continue
        return certificate
    return None


def _expired(certificate_pem: str, now: datetime) -> bool:
    """Past its notAfter (RFC 5280 §4.1.2.5); a certificate that cannot be read
    fails in :func:`_key` instead."""
    not_after = _not_after(certificate_pem)
    return not_after is not None and not_after < now


@lru_cache(maxsize=64)
def _not_after(certificate_pem: str) -> datetime | None:
    try:
        return x509.load_pem_x509_certificate(certificate_pem.encode()).not_valid_after_utc
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _key(certificate_pem: str) -> xmlsec.Key:
    """The certificate's bare public key (copying a whole certificate into every
    signature context costs a fifth of a verification)."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        public = certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return xmlsec.Key.from_memory(public, xmlsec.constants.KeyDataFormatPem)
    except (ValueError, xmlsec.Error) as exc:
        raise SignatureInvalid("A configured IdP certificate cannot be loaded.") from exc


def _check_shape(element: etree._Element, signature: etree._Element) -> None:
    parts: dict[str, list[etree._Element]] = {tag: [] for tag in _SHAPE_TAGS}
    for node in _SHAPE.all(signature):
        parts[node.tag].append(node)
    # In this order: a part is looked at only once the one above it is single, so
    # the parts read below come from the one SignedInfo and its one Reference.
    _only(parts, _SIGNED_INFO)
    method = _algorithm(_only(parts, _CANONICALIZATION_METHOD))
    if method != EXC_C14N:
        raise ForbiddenTransform("SignedInfo must use exclusive c14n without comments.")
    if _algorithm(_only(parts, _SIGNATURE_METHOD)) not in ALLOWED_SIGNATURES:
        raise SignatureAlgorithm()
    references = parts[_REFERENCE]
    if len(references) != 1:
        raise SignatureReference("The signature must carry exactly one Reference.")
    _check_reference(element, references[0], parts)


def _check_reference(
    element: etree._Element, reference: etree._Element, parts: dict[str, list[etree._Element]]
) -> None:
    element_id = element.get("ID")
    if not element_id or reference.get("URI") != f"#{element_id}":
        raise SignatureReference()
    transforms = parts[_TRANSFORM]
    if len(transforms) > 2 or any(_algorithm(t) not in ALLOWED_TRANSFORMS for t in transforms):
        raise ForbiddenTransform()
    if _algorithm(_only(parts, _DIGEST_METHOD)) not in ALLOWED_DIGESTS:
        raise SignatureAlgorithm()


def _only(parts: dict[str, list[etree._Element]], tag: str) -> etree._Element:
    found = parts[tag]
    if len(found) != 1:
        raise SignatureReference(
            f"The signature must carry exactly one {tag.rsplit('}', maxsplit=1)[-1]}."
        )
    return found[0]


def _algorithm(node: etree._Element) -> str:
    return node.get("Algorithm") or ""
