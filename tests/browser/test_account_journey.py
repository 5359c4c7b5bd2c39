"""The account journey (issue 17): a newcomer's account, proved and then recovered.

Ola signs up with her work address at ``wayne`` (basic mode, its IdP
SimpleSAMLphp), opens the confirmation link from her mail signed out (it asks for
her password first, then confirms), makes a token, and signs in through the
org's SSO: a first link, so she lands on the security page, which lists the token,
and revokes it in one click. Later she forgets her password: the reset link from
her mail sets a new one, which signs her in at /login.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import expect, log_in_at_simplesamlphp, screenshot
from tests.conftest import PASSWORD
from tests.e2e.test_sso_policy_saml import add_connection, cli_with_password

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Page

    from tests.e2e.test_saml_simplesamlphp import Saml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORG = "wayne"
EMAIL = "ola@wayne.test"
NEW_PASSWORD = "a new and longer passphrase"


@pytest.fixture(scope="module")
def wayne(saml: Saml) -> str:
    """The org in basic mode, its verified domain and an active SAML connection."""
    cli_with_password(saml, "user", "create", "admin@wayne.test")
    saml.cli_json("org", "create", ORG, "--admin", "admin@wayne.test")
    saml.cli_json("domain", "add", "--org", ORG, "wayne.test")
    saml.cli_json("domain", "verify", "--org", ORG, "wayne.test")
    connection_id = add_connection(saml, ORG)
    saml.cli_json("sso", "connection", "activate", str(connection_id), "--skip-test")
    saml.cli_json("sso", "mode", "--org", ORG, "basic")
    return ORG


def mailed_link(saml: Saml, subject: str, path: str) -> str:
    """The newest link to ``path`` in mail to Ola whose subject holds ``subject``."""
    outbox = saml.cli_json("mail", "outbox", "--to", EMAIL)
    assert isinstance(outbox, list)
    body = next(m["body"] for m in outbox if subject in m["subject"])
    found = re.search(rf"https?://\S+{re.escape(path)}\?token=[A-Za-z0-9_-]+", body)
    assert found, body
    return found.group(0)


def password_step(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_up_confirm_link_review_and_recover(page: Page, saml: Saml, wayne: str) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # "Revoke the token ...?"
    page.goto(f"{saml.hubgate}/signup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("mail")

    # Opened signed out, the link asks for its account's password, then comes back.
    page.goto(mailed_link(saml, "Confirm", "/verify-email"))
    expect(page).to_have_url(re.compile(r"/login\?next="))
    password_step(page, EMAIL, PASSWORD)
    page.get_by_role("button", name="Confirm my email").click()
    expect(page).to_have_url(f"{saml.hubgate}/verify-email/done")

    page.goto(f"{saml.hubgate}/settings/tokens")
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("cell", name="laptop", exact=True)).to_be_visible()

    saml.cli_json("member", "add", "--org", wayne, EMAIL)
    ola = saml.idp.set_user("ola", email=EMAIL, name="Ola")
    page.goto(f"{saml.hubgate}/sso/{wayne}/start?next=/{wayne}")
    log_in_at_simplesamlphp(page, saml.idp, ola)
    expect(page).to_have_url(re.compile(r"/account/security\?linked=wayne"))
    callout = page.get_by_role("status").filter(has_text="now linked to wayne")
    expect(callout).to_be_visible()
    screenshot(page, "account-journey-first-link-review")
    page.get_by_role("button", name=re.compile("^Revoke")).click()
    expect(page.get_by_text("revoked")).to_be_visible()
    page.goto(f"{saml.hubgate}/account/security?linked=wayne&next=/wayne")
    page.get_by_role("link", name="Everything is mine: continue").click()
    expect(page).to_have_url(f"{saml.hubgate}/{wayne}")

    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{saml.hubgate}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Send me a link").click()
    page.goto(mailed_link(saml, "password", "/reset-password"))
    page.get_by_role("textbox", name="New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page).to_have_url(re.compile(r"/login"))
    password_step(page, EMAIL, NEW_PASSWORD)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, "account-journey-after-reset")
