"""Password hashing with argon2id (RFC 9106) through argon2-cffi."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hubgate.errors import BadRequest

__all__ = ["PasswordPolicy", "Passwords"]

MIN_LENGTH = 10
MAX_LENGTH = 256


class PasswordPolicy:
    @staticmethod
    def check(password: str, email: str) -> None:
        if not isinstance(password, str) or len(password) < MIN_LENGTH:
            raise BadRequest(
                f"Choose a password of at least {MIN_LENGTH} characters.", code="weak_password"
            )
        if len(password) > MAX_LENGTH:
            raise BadRequest(
                f"Passwords are limited to {MAX_LENGTH} characters.", code="weak_password"
            )
        if password.lower() in {email.lower(), email.split("@", maxsplit=1)[0].lower()}:
            raise BadRequest("The password must not be your email.", code="weak_password")


class Passwords:
    """Hash and verify; a verification against a dummy hash keeps unknown
    accounts as slow as known ones."""

    def __init__(self, *, memory_kib: int = 65536, time_cost: int = 3) -> None:
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=4)
        self._dummy = self._hasher.hash("hubgate-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        if len(password) > MAX_LENGTH:
            return False
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
