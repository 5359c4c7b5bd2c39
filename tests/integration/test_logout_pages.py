"""What an org admin sees of single logout on the SSO page and in the API: per
connection whether it runs, and the values to give the IdP."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from hubgate.runtime import Runtime
from hubgate.sso import connections
from tests.conftest import World, sign_in
from tests.integration.slo_world import IDP_SLO, slo_org
from tests.integration.sso_world import sso_org

HTML = {"accept": "text/html"}


def _text(page: str) -> str:
    """The page's text, as a person reads it (no tags)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _connection(client: TestClient, connection_id: int) -> dict[str, object]:
    answer = client.get("/api/v1/orgs/acme/sso/connections")
    assert answer.status_code == 200, answer.text
    (found,) = [c for c in answer.json() if c["id"] == connection_id]
    return dict(found)


def test_single_logout_is_shown_on_when_the_idp_takes_it(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = slo_org(rt, world)
    acme.set_mode("off")  # managed mode would refuse the admin's password
    sign_in(client, "admin@acme.example")
    slo = connections.slo_url(rt, acme.connection_id)
    page = _text(client.get("/acme/sso", headers=HTML).text)
    assert "Single logout: on." in page and slo in page
    assert _connection(client, acme.connection_id)["logout"] == {
        "active": True, "sp_slo_url": slo, "idp_slo_url": IDP_SLO,
    }  # fmt: skip


def test_single_logout_is_shown_off_and_why(client: TestClient, rt: Runtime, world: World) -> None:
    acme = sso_org(rt, world)  # its IdP's metadata names no SingleLogoutService
    sign_in(client, "admin@acme.example")
    page = _text(client.get("/acme/sso", headers=HTML).text)
    assert "Single logout: off (the IdP's metadata names no SingleLogoutService)" in page
    assert connections.slo_url(rt, acme.connection_id) in page
    logout = _connection(client, acme.connection_id)["logout"]
    assert logout == {
        "active": False, "sp_slo_url": connections.slo_url(rt, acme.connection_id),
        "idp_slo_url": None,
    }  # fmt: skip
