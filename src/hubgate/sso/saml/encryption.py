"""Encrypted assertions (SAML core §2.3.4, XML Encryption) through the xmlsec bindings.

Key transport must be RSA-OAEP (RSA1_5 is refused: Bleichenbacher); content
encryption AES-GCM or AES-CBC. The SP private key is the only decryption key.
"""

from __future__ import annotations

import xmlsec
from lxml import etree

from hubgate.sso.saml.errors import DecryptionFailed, KeyTransportForbidden
from hubgate.sso.saml.xml import q

__all__ = ["decrypt_assertion"]

_KEY_TRANSPORTS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    }
)
_CONTENT = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    }
)


def decrypt_assertion(encrypted: etree._Element, sp_private_key: str) -> etree._Element:
    """Replace ``saml:EncryptedAssertion`` by the Assertion it holds, and return it.

    Every failure is the same ``DecryptionFailed``, so the endpoint is no
    decryption oracle."""
    data = encrypted.findall(q("xenc", "EncryptedData"))
    if len(data) != 1 or len(encrypted) != 1:
        raise DecryptionFailed("An EncryptedAssertion must hold exactly one EncryptedData.")
    _check_inline(data[0])
    _check_algorithms(encrypted, data[0])
    if not sp_private_key:
        raise DecryptionFailed("The connection has no SP key to decrypt assertions with.")
    manager = xmlsec.KeysManager()
    manager.add_key(_key(sp_private_key))
    try:
        xmlsec.EncryptionContext(manager).decrypt(data[0])
    except xmlsec.Error as exc:
        raise DecryptionFailed() from exc
    assertions = encrypted.findall(q("saml", "Assertion"))
    if len(assertions) != 1 or len(encrypted) != 1:
        raise DecryptionFailed("The encrypted content must be exactly one Assertion.")
    assertion = assertions[0]
    parent = encrypted.getparent()
    assert parent is not None
    parent.replace(encrypted, assertion)
    return assertion


def _check_inline(data: etree._Element) -> None:
    """Only inline ciphertext and an inline EncryptedKey: xmlsec would otherwise
    follow CipherReference and RetrievalMethod URIs (files, the network, XSLT)."""
    _only_children(data, {"EncryptionMethod", "KeyInfo", "CipherData"})
    _inline_cipher(data)
    key_info = data.find(q("ds", "KeyInfo"))
    keys = [] if key_info is None else list(key_info)
    if len(keys) != 1 or keys[0].tag != q("xenc", "EncryptedKey"):
        raise DecryptionFailed("The EncryptedData must carry exactly one inline EncryptedKey.")
    _only_children(keys[0], {"EncryptionMethod", "KeyInfo", "CipherData"})
    _inline_cipher(keys[0])
    for node in data.iter():
        if node.tag in (q("ds", "RetrievalMethod"), q("xenc", "CipherReference")):
            raise DecryptionFailed("References in encrypted content are not followed.")


def _only_children(node: etree._Element, names: set[str]) -> None:
    allowed = {q("xenc", n) for n in names} | {q("ds", n) for n in names}
    if any(child.tag not in allowed for child in node):
        raise DecryptionFailed("The encrypted content has unexpected elements.")


def _inline_cipher(node: etree._Element) -> None:
    cipher = node.findall(q("xenc", "CipherData"))
    if len(cipher) != 1 or [c.tag for c in cipher[0]] != [q("xenc", "CipherValue")]:
        raise DecryptionFailed("Only inline CipherValue ciphertext is accepted.")


def _check_algorithms(encrypted: etree._Element, data: etree._Element) -> None:
    content = data.find(q("xenc", "EncryptionMethod"))
    if content is None or content.get("Algorithm") not in _CONTENT:
        raise DecryptionFailed("The assertion's content encryption algorithm is not allowed.")
    for method in encrypted.iter(q("xenc", "EncryptionMethod")):
        if method is not content and method.get("Algorithm") not in _KEY_TRANSPORTS:
            raise KeyTransportForbidden()


def _key(pem: str) -> xmlsec.Key:
    try:
        return xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatPem)
    except xmlsec.Error as exc:
        raise DecryptionFailed("The SP private key cannot be loaded.") from exc
