"""The relying party's own key for ``private_key_jwt`` (OpenID Connect Core §9,
RFC 7523 §2.2): the public half published as a JWK Set (RFC 7517 §5) that the
provider fetches from the client's ``jwks_uri``.

The ``kid`` is the key's RFC 7638 thumbprint, so the public key read from the
connection's certificate and the private key that signs the client assertion
name themselves alike, and a rotated key gets a new ``kid``.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

__all__ = ["ASSERTION_ALGORITHM", "public_jwks", "signing_key"]

ASSERTION_ALGORITHM = "RS256"


def signing_key(private_key_pem: str) -> RSAKey:
    """The private key, with its ``kid`` set."""
    key = RSAKey.import_key(private_key_pem)
    return RSAKey.import_key(private_key_pem, {"kid": key.thumbprint()})


def public_jwks(certificate_pem: str) -> dict[str, Any]:
    """``{"keys": [...]}`` with the certificate's RSA public key, for signatures."""
    public = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = RSAKey.import_key(pem)
    jwk = key.as_dict(private=False, kid=key.thumbprint(), use="sig", alg=ASSERTION_ALGORITHM)
    return {"keys": [dict(jwk)]}
