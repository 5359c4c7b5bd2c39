"""The pure decisions of an SSO sign-in (hubgate.sso.login, DESIGN.md §2): which
org's domain an address belongs to, which email may link or create an account,
when an account is made just in time, and how a newcomer is admitted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hubgate.sso import errors
from hubgate.sso.identity import Identity
from hubgate.sso.login import Place, admissible_email, admission, domain_refusal, jit_refusal
from hubgate.sso.policy import Policy, SsoMode

ACME, GLOBEX = 1, 2
SAML, OTHER_CONNECTION = 10, 11
HERE = Place(
    connection_id=SAML, kind="saml", org_id=ACME, org_name="acme",
    policy=Policy(org_id=ACME, mode=SsoMode.MANAGED), owner_org_id=ACME,
    owner_connection_id=None, linked=None,
)  # fmt: skip


def _identity(email: str | None = "Ada@ACME.example", *, verified: bool = False) -> Identity:
    return Identity(
        connection_id=SAML, subject="ada", email=email, email_verified=verified,
        display_name=None, groups=(),
    )  # fmt: skip


def test_an_address_of_another_orgs_domain_is_refused_whoever_the_account_is() -> None:
    assert isinstance(domain_refusal(replace(HERE, owner_org_id=GLOBEX)), errors.DomainMismatch)
    assert domain_refusal(HERE) is None
    assert domain_refusal(replace(HERE, owner_org_id=None)) is None  # no org claims it


def test_an_admissible_email_is_normalized_and_in_this_orgs_domain() -> None:
    assert admissible_email(HERE, _identity()) == "ada@acme.example"
    with pytest.raises(errors.EmailMissing):
        admissible_email(HERE, _identity(None))
    with pytest.raises(errors.DomainMismatch):  # a domain no org verified
        admissible_email(replace(HERE, owner_org_id=None), _identity())
    with pytest.raises(errors.DomainMismatch):
        admissible_email(replace(HERE, owner_org_id=GLOBEX), _identity())


def test_a_domain_served_by_another_connection_of_the_org_is_refused() -> None:
    served = replace(HERE, owner_connection_id=OTHER_CONNECTION)
    with pytest.raises(errors.DomainMismatch, match="Another of this organization"):
        admissible_email(served, _identity())
    assert admissible_email(replace(HERE, owner_connection_id=SAML), _identity())


def test_oidc_must_vouch_for_each_email_saml_speaks_for_the_domain() -> None:
    oidc = replace(HERE, kind="oidc")
    with pytest.raises(errors.EmailUnverified):
        admissible_email(oidc, _identity(verified=False))
    assert admissible_email(oidc, _identity(verified=True)) == "ada@acme.example"
    assert admissible_email(HERE, _identity(verified=False)) == "ada@acme.example"


def test_managed_mode_makes_accounts_just_in_time() -> None:
    assert jit_refusal(SsoMode.MANAGED, None, None) is None
    assert jit_refusal(SsoMode.MANAGED, None, 7) is None  # an unverified holder blocks nothing
    assert jit_refusal(SsoMode.MANAGED, 7, 7) is None  # not even the browser's own account


def test_no_account_is_made_for_a_browser_signed_in_to_another_account() -> None:
    assert isinstance(jit_refusal(SsoMode.MANAGED, 8, None), errors.EmailNotOnAccount)
    assert isinstance(jit_refusal(SsoMode.MANAGED, 8, 7), errors.EmailNotOnAccount)


@pytest.mark.parametrize("mode", [SsoMode.OFF, SsoMode.BASIC])
def test_without_managed_mode_an_account_is_required(mode: SsoMode) -> None:
    assert isinstance(jit_refusal(mode, None, None), errors.AccountRequired)
    assert isinstance(jit_refusal(mode, None, 7), errors.AccountRequired)
    assert isinstance(jit_refusal(mode, 7, 7), errors.AccountEmailUnverified)
    assert isinstance(jit_refusal(mode, 8, None), errors.EmailNotOnAccount)


def test_an_invitation_comes_first_then_the_join_link_then_managed_mode() -> None:
    for mode in SsoMode:
        assert admission(mode, invited=True, joining=True) == "invitation"
        assert admission(mode, invited=False, joining=True) == "join_link"
    assert admission(SsoMode.MANAGED, invited=False, joining=False) == "jit"


@pytest.mark.parametrize("mode", [SsoMode.OFF, SsoMode.BASIC])
def test_basic_mode_admits_no_one_uninvited(mode: SsoMode) -> None:
    with pytest.raises(errors.NotInvited):
        admission(mode, invited=False, joining=False)
