"""The SP key pair of a connection: RSA-2048 and a self-signed certificate."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["certificate_expiry", "certificate_fingerprint", "new_key_pair"]


def new_key_pair(common_name: str, now: datetime, years: int = 10) -> tuple[str, str]:
    """(private key PEM, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * years))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def certificate_expiry(pem: str) -> datetime | None:
    """When a certificate expires, or ``None`` if it cannot be read."""
    try:
        return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc
    except ValueError:
        return None


def certificate_fingerprint(pem: str) -> str:
    """The SHA-256 fingerprint of a certificate's DER, as IdP consoles show it
    (hex, colon-separated); what the audit log names a certificate by."""
    body = "".join(line for line in pem.strip().splitlines() if "-----" not in line)
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        der = body.encode()
    return hashlib.sha256(der).digest().hex(":").upper()
