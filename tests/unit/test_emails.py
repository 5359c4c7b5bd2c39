"""Email normalization: one canonical form, and ambiguous forms refused."""

from __future__ import annotations

import pytest

from hubgate.accounts.emails import normalize_domain, normalize_email
from hubgate.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("alice@example.com.", "alice@example.com"),
        ("bob+ml@bücher.example", "bob+ml@xn--bcher-kva.example"),
        ("o'neil@sub.example.org", "o'neil@sub.example.org"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert normalize_email(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "a@b@example.com", '"quoted"@example.com', "no-at.example.com", "@example.com",
        "a@", "a@localhost", "a@-x.example", "a..b@example.com", ".a@example.com",
        "a@exa mple.com", "a\u0000@example.com", "x" * 65 + "@example.com",
        "a@" + "x" * 250 + ".com", "e\u0301@example.com", "a@example..com",
    ],
)  # fmt: skip
def test_ambiguous_or_malformed_addresses_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        normalize_email(raw)
    assert caught.value.code == "invalid_email"


def test_domains_compare_after_idna_lowercase_and_trailing_dot() -> None:
    assert normalize_domain("BÜCHER.example.") == normalize_domain("xn--bcher-kva.example")
