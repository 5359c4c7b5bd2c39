"""Email address normalization, and the one rule for the addresses hubgate keeps.

Addresses are compared after lowercasing, IDNA encoding of the domain and
trailing-dot removal. Forms that different parsers read differently (several
``@``, quoted local parts, non-NFC text, control characters) are refused.

:func:`accepted_email` and :func:`accepted_domain` decide which addresses and
domains hubgate takes in (an account's address at sign-up, a SCIM User's
``emails`` and the ``userName`` that stands for one, an org's domain, an invitation,
a setup link): the syntax above, and a special-use name (RFC 6761: ``.test``,
``.example``, ``.localhost``, ...) only on a development instance. Lookups (sign-in,
recovery) normalize only: an address nobody can hold simply finds no one.
"""

from __future__ import annotations

import re
import unicodedata

from hubgate.config import Environment
from hubgate.errors import BadRequest

__all__ = [
    "SPECIAL_USE_DOMAINS", "accepted_domain", "accepted_email", "is_special_use",
    "normalize_domain", "normalize_email", "split_email",
]  # fmt: skip

_MAX_ADDRESS = 254
_MAX_LOCAL = 64
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

SPECIAL_USE_DOMAINS = frozenset({
    "alt", "arpa", "example", "example.com", "example.net", "example.org", "internal",
    "invalid", "local", "localhost", "onion", "test",
})  # fmt: skip
"""The names no organization can hold in the public DNS, nor receive mail at: the
IANA Special-Use Domain Names registry (RFC 6761 §6, RFC 6762, RFC 7686, RFC 9476;
every ``.arpa`` entry under ``arpa``), and ``internal``, which ICANN reserved for
private networks in 2024. Their subdomains are special-use too."""


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


def is_special_use(domain: str) -> bool:
    """Whether the normalized ``domain`` is, or is under, a special-use name."""
    labels = domain.split(".")
    return any(".".join(labels[i:]) in SPECIAL_USE_DOMAINS for i in range(len(labels)))


def accepted_domain(domain: str, env: Environment) -> str:
    """The normalized ``domain`` if hubgate takes addresses there, else
    ``invalid_email``: a special-use name only in development (``HUBGATE_ENV=dev``,
    which ``hubgate demo`` and the tests use, with their ``acme.test``)."""
    name = normalize_domain(domain)
    if env is not Environment.DEV and is_special_use(name):
        raise invalid_email(
            f"{name} is a special-use name (RFC 6761) that no one can hold; only a "
            "development instance (HUBGATE_ENV=dev) takes it"
        )
    return name


def accepted_email(address: str, env: Environment) -> str:
    """The normalized ``address`` if hubgate takes it in (:func:`accepted_domain`)."""
    local, domain = split_email(address)
    return f"{local}@{accepted_domain(domain, env)}"
