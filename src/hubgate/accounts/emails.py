"""Email address normalization.

Addresses are compared after lowercasing, IDNA encoding of the domain and
trailing-dot removal. Forms that different parsers read differently (several
``@``, quoted local parts, non-NFC text, control characters) are refused.
"""

from __future__ import annotations

import re
import unicodedata

from hubgate.errors import BadRequest

__all__ = ["normalize_domain", "normalize_email", "split_email"]

_MAX_ADDRESS = 254
_MAX_LOCAL = 64
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def invalid_email(reason: str) -> BadRequest:
    return BadRequest(f"That email address is not valid: {reason}.", code="invalid_email")


def normalize_domain(domain: str) -> str:
    """Lowercase, IDNA (punycode) encode and strip one trailing dot."""
    if unicodedata.normalize("NFC", domain) != domain:
        raise invalid_email("the domain is not in NFC form")
    candidate = domain.strip().lower().removesuffix(".")
    try:
        ascii_domain = candidate.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise invalid_email("the domain cannot be encoded") from exc
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or not all(map(_LABEL.match, labels)):
        raise invalid_email("the domain is malformed")
    return ascii_domain


def split_email(address: str) -> tuple[str, str]:
    if not isinstance(address, str) or len(address) > _MAX_ADDRESS:
        raise invalid_email("it is too long")
    if unicodedata.normalize("NFC", address) != address:
        raise invalid_email("it is not in NFC form")
    if address.count("@") != 1:
        raise invalid_email("it must contain exactly one @")
    local, domain = address.strip().split("@")
    if not local or len(local) > _MAX_LOCAL or not _LOCAL_PART.match(local):
        raise invalid_email("the part before @ is malformed or quoted")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise invalid_email("the part before @ has misplaced dots")
    return local.lower(), normalize_domain(domain)


def normalize_email(address: str) -> str:
    local, domain = split_email(address)
    return f"{local}@{domain}"
