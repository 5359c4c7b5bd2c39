"""Encrypted assertions (SAML core §2.3.4, XML Encryption) through the xmlsec bindings.

Key transport must be RSA-OAEP (RSA1_5 is refused: Bleichenbacher); content
encryption AES-GCM or AES-CBC. The SP private key is the only decryption key.
"""

from __future__ import annotations

import xmlsec
from lxml import etree

from hubgate.sso.saml.errors import DecryptionFailed, KeyTransportForbidden, UnexpectedStructure
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
    """Replace ``saml:EncryptedAssertion`` by the Assertion it holds, and return it."""
    data = encrypted.findall(q("xenc", "EncryptedData"))
    if len(data) != 1:
        raise UnexpectedStructure("An EncryptedAssertion must hold exactly one EncryptedData.")
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
        raise UnexpectedStructure("The encrypted content must be exactly one Assertion.")
    assertion = assertions[0]
    parent = encrypted.getparent()
    assert parent is not None
    parent.replace(encrypted, assertion)
    return assertion


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
