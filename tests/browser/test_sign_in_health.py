"""The sign-in health chart on the SSO page, in Chromium: the SVG shows, one bar
per (outcome, connection, reason) and bucket, under the page's CSP (the ``page``
fixture fails the test on any refusal), and a bar opens the audit log filtered
on what it counts.

The events are the ones the sign-in flows write (``sso.login``,
``sso.login_refused``); tests/integration/test_sso_health.py drives the real
SAML flow. A screenshot of the chart is saved in the test's tmp dir."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hubgate import audit
from hubgate.runtime import Runtime
from hubgate.sso import health
from tests.browser.conftest import expect
from tests.conftest import PASSWORD, World
from tests.e2e.conftest import running_server
from tests.integration.sso_world import SsoOrg, sso_org

if TYPE_CHECKING:  # playwright may be missing: then the page fixture skips
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e]

REFUSALS = {"domain_mismatch": 2, "saml_signature_invalid": 1}


def _record_sign_ins(rt: Runtime, acme: SsoOrg) -> None:
    """What sso.login.sign_in and sso.flows.signin._refused write."""
    with rt.db.transaction() as db:
        for i in range(3):
            who = f"p{i}@acme.example"
            audit.record(
                db, audit.Actor(who), "sso.login", org_id=acme.org.id, target=who,
                data={"connection": acme.connection_id, "created": False, "linked": False},
            )  # fmt: skip
        for reason, times in REFUSALS.items():
            for _ in range(times):
                audit.record(
                    db, audit.Actor("x@nobody.example"), "sso.login_refused", org_id=acme.org.id,
                    target=f"connection:{acme.connection_id}", reason=reason,
                )  # fmt: skip


def _expected_bars(rt: Runtime, org_id: int) -> int:
    with rt.db.transaction() as db:
        return len(health.counts(db, org_id, health.window("day", rt.now())))


def test_the_chart_shows_and_links_to_the_audit_log(
    page: Page, rt: Runtime, world: World, database_url: str, tmp_path: Path
) -> None:
    acme = sso_org(rt, world)
    _record_sign_ins(rt, acme)
    bars = _expected_bars(rt, acme.org.id)
    assert bars >= 3  # success, and each reason
    with running_server(database_url) as base_url:
        login = {"email": "admin@acme.example", "password": PASSWORD}
        assert page.request.post(f"{base_url}/api/v1/login", data=login).ok
        page.goto(f"{base_url}/acme/sso")
        chart = page.locator("#chart-day svg")
        expect(chart).to_be_visible()
        expect(chart.locator("rect")).to_have_count(bars)
        chart.scroll_into_view_if_needed()
        shot = tmp_path / "sign-in-health.png"
        page.locator("section[aria-labelledby=health-title]").screenshot(path=str(shot))
        assert shot.stat().st_size > 0
        chart.locator("rect.bar-refused").first.click()
        expect(page).to_have_url(re.compile(r"/acme/audit\?action=sso.login_refused&reason="))
        expect(page.locator("tbody tr")).to_have_count(REFUSALS["domain_mismatch"])
