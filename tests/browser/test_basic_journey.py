"""The basic journey (issue 6): a member with a password meets basic mode's SSO.

``initech`` (domain ``initech.test``) is in basic mode: its members sign in as they
like, but reach its private resources only while they hold a recent single
sign-on through its IdP (the ``initech`` fixture sets it up through the
``hubgate`` CLI). The member here has a hubgate password: signs in with it, is
shown the banner and refused the private model, signs in through SimpleSAMLphp
from the banner, sees the model; when the SSO authentication is older than the
org's session timeout, the banner is back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import expect, log_in_at_simplesamlphp, screenshot
from tests.conftest import PASSWORD
from tests.e2e.test_sso_policy_saml import (
    age_sso_authentications_for_expiry_test,
    cli_with_password,
)

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Locator, Page

    from tests.e2e.test_saml_simplesamlphp import Saml
    from tests.e2e.test_sso_policy_saml import PolicyOrg

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "forecaster"
EMAIL = "pat@initech.test"


def sso_banner(page: Page) -> Locator:
    return page.get_by_role("region", name="Single sign-on")


def sign_in_with_password(page: Page, base_url: str, email: str, next_path: str) -> None:
    """/login in its two steps: the email, then (no IdP for this domain) the password."""
    page.goto(f"{base_url}/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()
    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    password.fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_password_sign_in_then_sso_from_the_banner_until_it_expires(
    page: Page, saml: Saml, initech: PolicyOrg
) -> None:
    saml.cli_json("resource", "create", "model", MODEL, "--org", "initech", "--private")
    pat_id = int(cli_with_password(saml, "user", "create", EMAIL)["id"])
    saml.cli_json("member", "add", EMAIL, "--org", "initech")
    pat = saml.idp.set_user("pat", email=EMAIL, name="Pat Password")
    org_url = f"{saml.hubgate}/initech"
    model_url = f"{org_url}/models/{MODEL}"

    sign_in_with_password(page, saml.hubgate, EMAIL, "/initech")
    expect(page).to_have_url(org_url)
    expect(sso_banner(page)).to_contain_text("requires single sign-on")
    expect(page.get_by_role("link", name=MODEL)).to_have_count(0)

    page.goto(model_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "initech requires a recent single sign-on."
    )
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_text("sso_required", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Continue with single sign-on")).to_be_visible()
    screenshot(page, "basic-journey-refused")

    page.goto(org_url)
    sso_banner(page).get_by_role("link", name="Continue with single sign-on").click()
    log_in_at_simplesamlphp(page, saml.idp, pat)
    expect(page).to_have_url(org_url)
    expect(sso_banner(page)).to_have_count(0)
    page.get_by_role("link", name=MODEL).click()
    expect(page).to_have_url(model_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"initech/{MODEL}")
    expect(sso_banner(page)).to_have_count(0)
    screenshot(page, "basic-journey-model-visible")

    page.get_by_role("link", name="initech", exact=True).click()
    expect(page).to_have_url(org_url)
    expect(page.get_by_role("link", name=MODEL)).to_be_visible()
    saml.cli_json("sso", "settings", "--org", "initech", "--session-timeout", "1h")
    age_sso_authentications_for_expiry_test(saml, pat_id, "initech", timedelta(hours=2))
    page.reload()
    expect(sso_banner(page)).to_contain_text("requires single sign-on")
    expect(page.get_by_role("link", name=MODEL)).to_have_count(0)
