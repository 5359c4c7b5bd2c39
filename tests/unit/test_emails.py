"""Email normalization: one canonical form, and ambiguous forms refused; and the one
rule for the addresses and domains hubgate takes in (special-use names in
development only)."""

from __future__ import annotations

import pytest

from hubgate.accounts.emails import (
    accepted_domain,
    accepted_email,
    is_special_use,
    normalize_domain,
    normalize_email,
)
from hubgate.config import Environment
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


SPECIAL_USE = (
    "ada@acme.test", "ada@a.b.acme.test", "ada@acme.example", "ada@example.com", "ada@Mail.Example.ORG",
    "ada@corp.local", "ada@box.localhost", "ada@no.invalid", "ada@abc.onion", "ada@lan.alt",
    "ada@host.internal", "ada@1.0.0.127.in-addr.arpa", "ada@acme.test.",
)  # fmt: skip


@pytest.mark.parametrize("address", SPECIAL_USE)
def test_production_refuses_special_use_names(address: str) -> None:
    with pytest.raises(BadRequest) as caught:
        accepted_email(address, Environment.PRODUCTION)
    assert caught.value.code == "invalid_email"
    assert "special-use name (RFC 6761)" in caught.value.message
    with pytest.raises(BadRequest):
        accepted_domain(address.partition("@")[2], Environment.PRODUCTION)


@pytest.mark.parametrize("address", SPECIAL_USE)
def test_development_takes_special_use_names_in_their_canonical_form(address: str) -> None:
    assert accepted_email(address, Environment.DEV) == normalize_email(address)
    assert is_special_use(normalize_email(address).partition("@")[2])


@pytest.mark.parametrize(
    "address",
    ["ada@acme.com", "ada@contest.com", "ada@acme.testing", "ada@mylocal.io", "ada@example.co",
     "ada@test.acme.com", "ada@local.acme.org", "Ada@Bücher.de"],
)  # fmt: skip
def test_a_name_that_only_looks_special_is_taken_everywhere(address: str) -> None:
    """Special-use is by whole labels from the right: ``test.acme.com`` is acme.com's."""
    for env in Environment:
        assert accepted_email(address, env) == normalize_email(address)


def test_the_rule_keeps_the_syntax_rules_in_development_too() -> None:
    for address in ("a@b@acme.test", '"q"@acme.test', "a@localhost", "a..b@acme.test"):
        with pytest.raises(BadRequest) as caught:
            accepted_email(address, Environment.DEV)
        assert caught.value.code == "invalid_email"
