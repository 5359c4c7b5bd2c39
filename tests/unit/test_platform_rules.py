"""Which own account a platform provider's answer signs in to (README "Who owns
an account"): a link by subject first, then only an address the provider
vouches for, binding only the account that verified it."""

from __future__ import annotations

from hubgate.sso.platform.rules import Create, Facts, Link, Refuse, SignIn, decide


def facts(**changes: object) -> Facts:
    base = {"linked_user": None, "email": "ada@example.com", "email_vouched": True,
            "verified_holder": None}  # fmt: skip
    return Facts(**{**base, **changes})  # type: ignore[arg-type]


def test_an_existing_link_signs_in_its_account_whatever_the_address_says() -> None:
    assert decide(facts(linked_user=7, email="mallory@example.com", verified_holder=9)) == SignIn(7)
    assert decide(facts(linked_user=7, email=None, email_vouched=False)) == SignIn(7)


def test_a_vouched_address_links_the_account_that_verified_it() -> None:
    assert decide(facts(verified_holder=3)) == Link(3, "ada@example.com")


def test_a_vouched_address_no_account_verified_makes_a_new_account() -> None:
    assert decide(facts()) == Create("ada@example.com")


def test_an_unvouched_address_neither_links_nor_creates() -> None:
    """The attacker's provider account names the victim's address, unverified."""
    assert decide(facts(email_vouched=False, verified_holder=3)) == Refuse(
        "provider_email_unverified"
    )
    assert decide(facts(email_vouched=False)) == Refuse("provider_email_unverified")


def test_no_usable_address_is_refused() -> None:
    assert decide(facts(email=None)) == Refuse("provider_email_missing")
