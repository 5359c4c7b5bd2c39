"""SP-initiated sign-in: an AuthnRequest over the HTTP-Redirect binding
(SAML bindings §3.4: DEFLATE, base64, URL-encoded; optionally signed)."""

from __future__ import annotations

import base64
import secrets
import zlib
from datetime import datetime
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from hubgate.sso.saml.config import SamlConfig
from hubgate.sso.saml.metadata import POST
from hubgate.sso.saml.xml import NS, q

__all__ = ["new_request_id", "redirect_url"]

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def new_request_id() -> str:
    """An xs:ID (must not start with a digit) with 160 random bits."""
    return "_" + secrets.token_hex(20)


def authn_request(config: SamlConfig, request_id: str, now: datetime) -> bytes:
    request = etree.Element(
        q("samlp", "AuthnRequest"), nsmap={"samlp": NS["samlp"], "saml": NS["saml"]}
    )
    request.set("ID", request_id)
    request.set("Version", "2.0")
    request.set("IssueInstant", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    request.set("Destination", config.idp_sso_url)
    request.set("AssertionConsumerServiceURL", config.acs_url)
    request.set("ProtocolBinding", POST)
    etree.SubElement(request, q("saml", "Issuer")).text = config.sp_entity_id
    return etree.tostring(request)


def redirect_url(config: SamlConfig, request_id: str, relay_state: str, now: datetime) -> str:
    """The IdP URL the browser is sent to, carrying the request and the RelayState."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(authn_request(config, request_id, now)) + deflater.flush()
    params = {"SAMLRequest": base64.b64encode(packed).decode(), "RelayState": relay_state}
    if config.sign_authn_requests and config.sp_private_key:
        params["SigAlg"] = RSA_SHA256
        params["Signature"] = _sign(urlencode(params).encode(), config.sp_private_key)
    separator = "&" if "?" in config.idp_sso_url else "?"
    return config.idp_sso_url + separator + urlencode(params)


def _sign(message: bytes, private_key_pem: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
