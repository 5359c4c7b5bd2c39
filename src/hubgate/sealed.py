"""Secrets at rest (SP private keys, later OIDC client secrets), sealed with
Fernet (AES-CBC + HMAC-SHA256, from ``cryptography``) under a key derived from
``HUBGATE_SECRET_KEY`` by HKDF-SHA256.

Rotating the secret: put the old one in ``HUBGATE_PREVIOUS_SECRET_KEYS``; values
sealed under it still open, and new ones are sealed under the current key.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hubgate.config import Settings
from hubgate.errors import HubgateError

__all__ = ["Sealer", "UnsealFailed"]

_INFO = b"hubgate secrets at rest v1"
_OPENED = 256


class UnsealFailed(HubgateError):
    status = 500
    default_code = "secret_unreadable"
    default_message = (
        "A stored secret cannot be opened with the configured HUBGATE_SECRET_KEY "
        "(was the key changed without listing the old one in HUBGATE_PREVIOUS_SECRET_KEYS?)."
    )


def _fernet(secret: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


class Sealer:
    def __init__(self, settings: Settings) -> None:
        previous = [k.encode() for k in settings.previous_secret_keys if k]
        self._fernet = MultiFernet([_fernet(settings.secret), *map(_fernet, previous)])
        # Every SAML sign-in opens its connection's SP key: the last few opened are
        # kept (a sealed value never changes meaning; a failure is not kept).
        self.unseal = lru_cache(maxsize=_OPENED)(self._unseal)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def _unseal(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise UnsealFailed() from exc
