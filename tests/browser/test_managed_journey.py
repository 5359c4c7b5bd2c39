"""The managed journey (issue 6): a newcomer of a managed org signs in by email.

``acme`` (domain ``acme.test``) is in managed mode, its SAML connection made from
SimpleSAMLphp's metadata, verified by a test sign-in and activated, all through
the ``hubgate`` CLI (the ``acme`` fixture). A person the IdP knows and hubgate
does not types only an email at /login, lands on the IdP's form, and comes back
signed in to an account made just in time, a member of acme's default team.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import expect, log_in_at_simplesamlphp

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Page

    from tests.e2e.test_saml_simplesamlphp import Saml
    from tests.e2e.test_sso_policy_saml import PolicyOrg

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_email_first_sign_in_at_the_idp_creates_the_account_in_the_default_team(
    page: Page, saml: Saml, acme: PolicyOrg
) -> None:
    mona = saml.idp.set_user("mona", name="Mona Managed", groups=["all-staff"])
    assert mona.email is not None
    assert mona.email not in acme.members()

    page.goto(f"{saml.hubgate}/login")
    expect(page.get_by_role("heading", name="Sign in to hubgate")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)  # email first: one field
    page.get_by_label("Email").fill(mona.email)
    page.get_by_role("button", name="Continue").click()

    log_in_at_simplesamlphp(page, saml.idp, mona)

    expect(page).to_have_url(f"{saml.hubgate}/")
    account = page.get_by_role("navigation", name="Account")
    expect(account.get_by_role("button", name="Sign out")).to_be_visible()
    orgs = page.get_by_role("region", name="My organizations")
    orgs.get_by_role("link", name=re.compile(r"\bacme\b")).click()

    expect(page).to_have_url(f"{saml.hubgate}/acme")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("acme", re.IGNORECASE))
    tabs = page.get_by_role("navigation", name="Organization")
    tabs.get_by_role("link", name="Teams").click()

    expect(page).to_have_url(f"{saml.hubgate}/acme/teams")
    expect(tabs.get_by_role("link", name="Teams")).to_have_attribute("aria-current", "page")
    teams = page.get_by_role("region", name=re.compile("^Teams"))
    everyone = teams.get_by_role("listitem").filter(has_text="everyone")
    expect(everyone).to_contain_text("default")
    expect(everyone.get_by_role("link", name=re.compile(r"\beveryone\b"))).to_be_visible()
    # The account was made by this sign-in, in the default role and team.
    assert acme.members()[mona.email] == ("write", {"everyone": "write"})
