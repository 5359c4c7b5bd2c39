"""The browser bindings of SAML protocol messages other than the sign-in Response
(SAML bindings §3.4 HTTP-Redirect, §3.5 HTTP-POST), for single logout.

HTTP-Redirect carries the message DEFLATE-compressed and base64-encoded in the
query string, signed (when it is) by a detached signature over the octets
``SAMLRequest=…&RelayState=…&SigAlg=…`` *as they appear in the URL* (§3.4.4.1).
So an incoming signature is checked over the raw query string exactly as
received, never over parameters decoded and encoded again: two encodings of the
same value are two different messages. HTTP-POST carries the message base64-
encoded in a form field, signed by an enveloped XML signature, which
:mod:`~hubgate.sso.saml.logout` verifies with the sign-in's pipeline.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus, urlencode

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from hubgate.sso.saml.errors import (
    BindingInvalid,
    IdpCertificateExpired,
    InflatedTooLarge,
    MalformedResponse,
    ResponseTooLarge,
    SignatureAlgorithm,
    SignatureInvalid,
    SignatureMissing,
)
from hubgate.sso.saml.keys import certificate_expiry
from hubgate.sso.saml.xml import decode, q

__all__ = [
    "MAX_INFLATED",
    "MAX_QUERY",
    "POST",
    "REDIRECT",
    "RSA_SHA256",
    "Received",
    "encode_post",
    "encode_redirect",
    "received_by_post",
    "received_by_redirect",
    "verify_query_signature",
]

REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
MAX_QUERY = 32 * 1024
"""The longest query string taken (browsers and proxies cut URLs near here)."""
MAX_INFLATED = 128 * 1024
"""The most a DEFLATE-encoded message may inflate to (a logout message is ~2 KB)."""
MAX_RELAY_STATE = 1024
_MESSAGES = ("SAMLRequest", "SAMLResponse")
_SIGNED_ORDER = ("RelayState", "SigAlg")
_BINDING_PARAMETERS = frozenset({*_MESSAGES, *_SIGNED_ORDER, "Signature"})

# SigAlg URIs (RFC 4051 §2.3) allowed over a query string: the sign-in's XML
# signature allow-list, RSA and ECDSA over SHA-2; never SHA-1, DSA or HMAC.
_RSA, _EC = "rsa", "ec"
_QUERY_SIGNATURES: dict[str, tuple[str, Callable[[], hashes.HashAlgorithm]]] = {
    RSA_SHA256: (_RSA, hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": (_RSA, hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": (_RSA, hashes.SHA512),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": (_EC, hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": (_EC, hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": (_EC, hashes.SHA512),
}


@dataclass(frozen=True, slots=True)
class Received:
    """A SAML protocol message as a browser delivered it.

    ``parameter`` is ``SAMLRequest`` or ``SAMLResponse``; ``document`` the XML.
    By HTTP-Redirect, ``signed_octets`` are the query-string octets the detached
    ``signature`` covers (``None`` when the message came unsigned).
    """

    binding: str
    parameter: str
    document: bytes
    relay_state: str | None = None
    sig_alg: str | None = None
    signature: bytes | None = None
    signed_octets: bytes | None = None


# -- sending ------------------------------------------------------------------------


def encode_redirect(
    url: str, parameter: str, message: bytes, relay_state: str | None, private_key_pem: str
) -> str:
    """``url`` carrying ``message`` by HTTP-Redirect, signed rsa-sha256 with the
    SP key over the exact query-string octets sent (bindings §3.4.4.1)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(message) + deflater.flush()
    params = [(parameter, base64.b64encode(packed).decode())]
    if relay_state is not None:
        params.append(("RelayState", relay_state))
    params.append(("SigAlg", RSA_SHA256))
    signed = urlencode(params)
    signature = base64.b64encode(_rsa_sign(signed.encode(), private_key_pem)).decode()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{signed}&{urlencode({'Signature': signature})}"


def encode_post(message: bytes, private_key_pem: str) -> str:
    """The HTTP-POST form value carrying ``message`` (bindings §3.5.4): base64 of
    the message with an enveloped rsa-sha256 signature by the SP key, placed after
    its Issuer, over exclusive c14n (SAML core §5.4), through the xmlsec bindings."""
    root = etree.fromstring(message)
    constants = xmlsec.constants
    signature = xmlsec.template.create(
        root, constants.TransformExclC14N, constants.TransformRsaSha256, ns="ds"
    )
    issuer = root.find(q("saml", "Issuer"))
    if issuer is None:
        raise ValueError("A SAML message this SP signs carries its Issuer.")
    issuer.addnext(signature)
    reference = xmlsec.template.add_reference(
        signature, constants.TransformSha256, uri=f"#{root.get('ID')}"
    )
    xmlsec.template.add_transform(reference, constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, constants.TransformExclC14N)
    context = xmlsec.SignatureContext()
    context.register_id(root, "ID")
    context.key = xmlsec.Key.from_memory(private_key_pem.encode(), constants.KeyDataFormatPem)
    context.sign(signature)
    return base64.b64encode(etree.tostring(root)).decode()


def _rsa_sign(octets: bytes, private_key_pem: str) -> bytes:
    key = _private_key(private_key_pem)
    return key.sign(octets, padding.PKCS1v15(), hashes.SHA256())


@lru_cache(maxsize=64)
def _private_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("The SP key of a connection is an RSA key.")
    return key


# -- receiving ----------------------------------------------------------------------


def received_by_redirect(raw_query: str) -> Received:
    """The message in a raw (still URL-encoded) query string: one of SAMLRequest
    and SAMLResponse, each binding parameter at most once, inflated within
    :data:`MAX_INFLATED`; the signed octets taken from the raw string."""
    if len(raw_query) > MAX_QUERY:
        raise ResponseTooLarge("The SAML query string is longer than allowed.")
    raw = _raw_parameters(raw_query)
    parameter = _the_message(raw)
    relay_state = _decoded(raw["RelayState"]) if "RelayState" in raw else None
    if relay_state is not None and len(relay_state) > MAX_RELAY_STATE:
        raise BindingInvalid("The RelayState is longer than allowed.")
    signature = decode(_decoded(raw["Signature"]), MAX_QUERY) if "Signature" in raw else None
    signed = [f"{parameter}={raw[parameter]}"]
    signed += [f"{name}={raw[name]}" for name in _SIGNED_ORDER if name in raw]
    return Received(
        binding=REDIRECT, parameter=parameter, document=_inflated(_decoded(raw[parameter])),
        relay_state=relay_state, sig_alg=_decoded(raw["SigAlg"]) if "SigAlg" in raw else None,
        signature=signature, signed_octets="&".join(signed).encode() if signature else None,
    )  # fmt: skip


def received_by_post(parameter: str, value: str, relay_state: str | None, limit: int) -> Received:
    """The message in an HTTP-POST form field (base64, bounded by ``limit``)."""
    if parameter not in _MESSAGES:
        raise BindingInvalid()
    if relay_state is not None and len(relay_state) > MAX_RELAY_STATE:
        raise BindingInvalid("The RelayState is longer than allowed.")
    return Received(POST, parameter, decode(value, limit), relay_state)


def _raw_parameters(raw_query: str) -> dict[str, str]:
    """Binding parameters by name, values still URL-encoded; others are ignored."""
    found: dict[str, str] = {}
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        if name not in _BINDING_PARAMETERS:
            continue
        if name in found:
            raise BindingInvalid(f"The query string carries {name} twice.")
        found[name] = value
    return found


def _the_message(raw: dict[str, str]) -> str:
    present = [name for name in _MESSAGES if name in raw]
    if len(present) != 1:
        raise BindingInvalid("Give exactly one of SAMLRequest and SAMLResponse.")
    return present[0]


def _decoded(value: str) -> str:
    try:
        return unquote_plus(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise BindingInvalid("A query parameter is not UTF-8.") from exc


def _inflated(encoded: str) -> bytes:
    """Base64, then raw DEFLATE (RFC 1951), stopped at :data:`MAX_INFLATED`."""
    packed = decode(encoded, MAX_QUERY)
    inflater = zlib.decompressobj(-15)
    try:
        document = inflater.decompress(packed, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise MalformedResponse("The SAML message is not DEFLATE-encoded.") from exc
    if len(document) > MAX_INFLATED or inflater.unconsumed_tail:
        raise InflatedTooLarge()
    if not inflater.eof:
        raise MalformedResponse("The SAML message's DEFLATE stream is cut short.")
    return document


# -- the detached signature ------------------------------------------------------------


def verify_query_signature(
    received: Received, certificates: tuple[str, ...], now: datetime
) -> None:
    """Bindings §3.4.4.1: the signature over the received octets verifies with one
    of ``certificates`` still valid at ``now`` (never a key the message names), by
    an allowed SigAlg. As for an enveloped signature, one that verifies only with an
    expired certificate, or any once every certificate has expired, is
    :class:`IdpCertificateExpired`."""
    if received.signature is None or received.signed_octets is None:
        raise SignatureMissing("The SAML message carries no query-string signature.")
    algorithm = _QUERY_SIGNATURES.get(received.sig_alg or "")
    if algorithm is None:
        raise SignatureAlgorithm(f"SigAlg {(received.sig_alg or 'none')[:80]} is not allowed.")
    kind, digest = algorithm
    signature, octets = received.signature, received.signed_octets

    def verifying(candidates: tuple[str, ...]) -> bool:
        return any(
            _verifies(_public_key(pem), kind, digest(), signature, octets) for pem in candidates
        )

    current = tuple(pem for pem in certificates if not _expired(pem, now))
    if verifying(current):
        return
    expired = tuple(pem for pem in certificates if pem not in current)
    if expired and (not current or verifying(expired)):
        raise IdpCertificateExpired()
    raise SignatureInvalid()


def _expired(certificate_pem: str, now: datetime) -> bool:
    """Past its notAfter (RFC 5280 §4.1.2.5); one that cannot be read fails in
    :func:`_public_key` instead."""
    not_after = certificate_expiry(certificate_pem)
    return not_after is not None and not_after < now


def _verifies(
    key: Any, kind: str, digest: hashes.HashAlgorithm, signature: bytes, octets: bytes
) -> bool:
    try:
        if kind == _RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, octets, padding.PKCS1v15(), digest)
            return True
        if kind == _EC and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(_der(signature, key), octets, ec.ECDSA(digest))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _der(signature: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 4051 §3.3.1: an XML-DSig ECDSA value is r || s, each the curve's size;
    anything else is taken as DER (what OpenSSL-based IdPs send)."""
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return signature
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    return encode_dss_signature(r, s)


@lru_cache(maxsize=64)
def _public_key(certificate_pem: str) -> Any:
    try:
        return x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid("A configured IdP certificate cannot be loaded.") from exc
