"""The admin journey (issue 6): an org admin's single sign-on page ``/{org}/sso``.

``umbrella`` (domain ``umbrella.test``) has an active SAML connection to
SimpleSAMLphp and is in basic-optional mode, so its admin still signs in with a
password; the operator set all that up through the ``hubgate`` CLI. In the
browser the admin opens the "Single sign-on" tab, writes a role mapping and
previews it, then on the "Members" tab makes the join link and copies it (a
newcomer opens it in a browser of their own: it runs SSO and lets them in), names an existing member
outside the org's domains an external collaborator, and finally finds, by the
trace id a refused person read off their refusal page, that refusal in the
audit log. The refused person is an account of umbrella's domain who is no
member, signing in through the real IdP: basic modes admit no one uninvited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import (
    VIEWPORT,
    WAIT_MS,
    expect,
    log_in_at_simplesamlphp,
    screenshot,
)
from tests.conftest import PASSWORD
from tests.e2e.test_sso_policy_saml import add_connection, cli_with_password

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Browser, Locator, Page

    from tests.e2e.test_saml_simplesamlphp import Saml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORG = "umbrella"
ADMIN = "admin@umbrella.test"
COLLABORATOR = "val@vendor.test"  # a member outside umbrella's domains


@pytest.fixture(scope="module")
def umbrella(saml: Saml) -> str:
    """The org, its password admin, its verified domain and active connection."""
    cli_with_password(saml, "user", "create", ADMIN)
    saml.cli_json("org", "create", ORG, "--admin", ADMIN, "--display-name", "Umbrella")
    saml.cli_json("domain", "add", "--org", ORG, "umbrella.test")
    saml.cli_json("domain", "verify", "--org", ORG, "umbrella.test")
    connection_id = add_connection(saml, ORG)
    saml.cli_json("sso", "connection", "activate", str(connection_id), "--skip-test")
    saml.cli_json("sso", "mode", "--org", ORG, "basic-optional")
    return ORG


@pytest.fixture
def second_browser(chromium: Browser) -> Iterator[Page]:
    """Another person's browser: its own context, so no cookie of the admin's."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def card(page: Page, title: str) -> Locator:
    return page.get_by_role("region", name=title, exact=True)


def sign_in_with_password(page: Page, base_url: str, email: str, next_path: str) -> None:
    page.goto(f"{base_url}/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def refused_trace_id(page: Page) -> str:
    """The trace id on the refusal page the person is looking at."""
    trace = page.get_by_role("paragraph").filter(has_text="trace id").get_by_role("code")
    expect(trace).to_have_text(re.compile(r"^[0-9a-f]{8,32}$"))
    return trace.inner_text()


def test_mapping_preview_join_link_collaborator_and_a_refusal_found_by_trace_id(
    page: Page, second_browser: Page, saml: Saml, umbrella: str
) -> None:
    for email in (COLLABORATOR, "quinn@umbrella.test", "rex@umbrella.test"):
        cli_with_password(saml, "user", "create", email)
    saml.cli_json("member", "add", COLLABORATOR, "--org", ORG)
    quinn = saml.idp.set_user("quinn", email="quinn@umbrella.test", groups=["umbrella-eng"])
    rex = saml.idp.set_user("rex", email="rex@umbrella.test")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=saml.hubgate)

    sign_in_with_password(page, saml.hubgate, ADMIN, f"/{ORG}")
    expect(page).to_have_url(f"{saml.hubgate}/{ORG}")
    tabs = page.get_by_role("navigation", name="Organization")
    tabs.get_by_role("link", name="Single sign-on").click()
    expect(page).to_have_url(f"{saml.hubgate}/{ORG}/sso")
    expect(tabs.get_by_role("link", name="Single sign-on")).to_have_attribute(
        "aria-current", "page"
    )

    # The role mapping, then what it would give.
    roles = card(page, "Role mapping")
    roles.get_by_role("textbox").fill("groups=umbrella-admins:admin\ngroups=umbrella-eng:read")
    roles.get_by_role("button", name="Save role mapping").click()
    expect(page.get_by_role("status")).to_have_text("Role mappings saved.")
    expect(card(page, "Role mapping").get_by_role("textbox")).to_have_value(
        "groups=umbrella-admins:admin\ngroups=umbrella-eng:read"
    )
    preview = card(page, "Preview")
    preview.get_by_label("A person with the groups").fill("umbrella-eng, umbrella-admins")
    preview.get_by_role("button", name="Preview").click()
    expect(card(page, "Preview").get_by_role("status")).to_have_text(
        "A person with groups [umbrella-eng, umbrella-admins] would get role admin."
    )
    preview = card(page, "Preview")
    preview.get_by_label("A person with the groups").fill("contractors")
    preview.get_by_role("button", name="Preview").click()
    expect(card(page, "Preview").get_by_role("status")).to_have_text(
        "A person with groups [contractors] would get role write (the default)."
    )

    # The join link, on the Members tab: made, copied, opened by a newcomer in
    # their own browser; the Single sign-on tab shows the same link.
    tabs.get_by_role("link", name="Members").click()
    expect(page).to_have_url(f"{saml.hubgate}/{ORG}/members")
    expect(card(page, "Join link")).to_contain_text("No join link yet.")
    card(page, "Join link").get_by_role("button", name="Create join link").click()
    expect(page.get_by_role("status")).to_have_text(
        "New join link ready: any earlier one stopped working."
    )
    shown = card(page, "Join link")
    expect(shown).to_contain_text("Never expires.")
    shown.get_by_role("button", name="Copy the join link").click()
    expect(shown.get_by_role("button", name="Copied the join link")).to_be_visible()
    join_url = page.evaluate("navigator.clipboard.readText()")
    assert isinstance(join_url, str)
    assert re.fullmatch(rf"{re.escape(saml.hubgate)}/sso/join/\S+", join_url), join_url
    expect(shown.get_by_role("code")).to_have_text(join_url)
    screenshot(page, "admin-journey-members-join-link")
    page.goto(f"{saml.hubgate}/{ORG}/sso")
    expect(card(page, "Join link").get_by_role("code")).to_have_text(join_url)
    second_browser.goto(join_url)
    log_in_at_simplesamlphp(second_browser, saml.idp, quinn)
    expect(second_browser).to_have_url(f"{saml.hubgate}/{ORG}")
    account = second_browser.get_by_role("navigation", name="Account")
    expect(account).to_contain_text("quinn@umbrella.test")
    screenshot(second_browser, "admin-journey-joined-by-link")

    # An external collaborator: a member outside the org's domains.
    page.goto(f"{saml.hubgate}/{ORG}/sso")
    collaborators = card(page, "External collaborators")
    expect(collaborators.get_by_role("listitem")).to_have_text(["None."])
    collaborators.get_by_label("Member's email").fill(COLLABORATOR)
    collaborators.get_by_role("button", name="Add collaborator").click()
    expect(page.get_by_role("status")).to_have_text("Collaborators updated.")
    listed = card(page, "External collaborators").get_by_role("listitem")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(COLLABORATOR)
    expect(listed.get_by_role("button", name=f"Require SSO of {COLLABORATOR}")).to_be_visible()
    screenshot(page, "admin-journey-sso-page")
    # quinn joined through the link with the role umbrella-eng maps to.
    listed_members = saml.cli_json("member", "list", "--org", ORG)
    assert isinstance(listed_members, list), listed_members
    members = {m["email"]: m["role"] for m in listed_members}
    assert members == {ADMIN: "admin", COLLABORATOR: "write", "quinn@umbrella.test": "read"}

    # A person of umbrella's domain, no member: refused after the IdP vouched.
    second_browser.context.clear_cookies()
    second_browser.goto(f"{saml.hubgate}/sso/{ORG}/start?next=/{ORG}")
    log_in_at_simplesamlphp(second_browser, saml.idp, rex)
    expect(second_browser.get_by_role("heading", level=1)).to_have_text(
        re.compile("^You are not a member of this organization. Ask an admin for an invitation")
    )
    expect(second_browser.get_by_text("not_member", exact=True)).to_be_visible()
    trace_id = refused_trace_id(second_browser)
    screenshot(second_browser, "admin-journey-refused")

    # The admin finds it by the trace id the person gave.
    page.goto(f"{saml.hubgate}/{ORG}/sso")
    lookup = card(page, "Find a refused sign-in")
    lookup.get_by_label("Trace id from the person's refusal page").fill(trace_id)
    lookup.get_by_role("button", name="Look up").click()
    expect(page).to_have_url(f"{saml.hubgate}/{ORG}/audit?trace={trace_id}")
    expect(page.get_by_label("Trace id")).to_have_value(trace_id)
    log = card(page, "Audit log").get_by_role("table")
    rows = log.get_by_role("row").filter(has=page.get_by_role("cell"))
    refusal = rows.filter(has_text="sso.login_refused")
    expect(refusal).to_have_count(1)
    expect(refusal).to_contain_text("not_member")
    # Who it was: the identity the IdP vouched for, in the same sign-in's trace.
    vouched = rows.filter(has_text="sso.identity_verified")
    expect(vouched).to_have_count(1)
    expect(vouched).to_contain_text('"email": "rex@umbrella.test"')
    expect(rows).to_have_count(2)  # only this sign-in's events
    for row in (refusal, vouched):
        expect(row.get_by_role("cell").last).to_have_text(trace_id)
