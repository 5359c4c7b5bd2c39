"""The dev IdP's signing key: one RSA-2048 key with a self-signed certificate,
signing both SAML (the certificate in its metadata) and id_tokens (its JWKS).

Kept in a folder (``idp-key.pem`` mode 0600, ``idp-cert.pem``) so that hubgate
connections made from the IdP's metadata keep working across restarts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from joserfc.jwk import RSAKey

from hubgate.sso.saml.keys import new_key_pair

__all__ = ["SigningKey", "ephemeral", "load_or_create", "save"]

KEY_FILE = "idp-key.pem"
CERT_FILE = "idp-cert.pem"
_COMMON_NAME = "hubgate dev-idp (NOT FOR PRODUCTION)"


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_pem: str = field(repr=False)
    cert_pem: str

    @property
    def jwk(self) -> RSAKey:
        """The private key as a JWK whose ``kid`` is its RFC 7638 thumbprint."""
        key = RSAKey.import_key(self.key_pem)
        return RSAKey.import_key(key.as_dict(private=True), {"kid": key.thumbprint(), "use": "sig"})

    def public_jwks(self) -> dict[str, list[dict[str, object]]]:
        public = self.jwk.as_dict(private=False)
        return {"keys": [{**public, "alg": "RS256"}]}


def ephemeral() -> SigningKey:
    """A fresh key held in memory only (tests, scripts)."""
    key_pem, cert_pem = new_key_pair(_COMMON_NAME, datetime.now(UTC))
    return SigningKey(key_pem, cert_pem)


def load_or_create(folder: Path) -> SigningKey:
    """The key kept in ``folder``, made there on first use."""
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    if key_path.is_file() and cert_path.is_file():
        return SigningKey(key_path.read_text(), cert_path.read_text())
    made = ephemeral()
    save(folder, made)
    return made


def save(folder: Path, key: SigningKey) -> None:
    """Write ``key`` into ``folder`` (made 0700; the private key 0600)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(folder / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.key_pem)
    (folder / CERT_FILE).write_text(key.cert_pem)
