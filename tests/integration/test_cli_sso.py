"""``hubgate sso connection add`` driven from the outside: the IdP's metadata or
discovery document is fetched before the transaction that stores the connection
(the fakes below go through tests/network_guard.py, so one fetched inside it
fails the test), and an unknown org is refused before anything is fetched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hubgate.cli.root import main
from hubgate.errors import BadRequest
from hubgate.sso import connections
from tests import network_guard
from tests.conftest import World
from tests.integration.test_oidc_flow import CLIENT, ISSUER, SECRET, Provider, install
from tests.integration.test_saml_flow import IDP, idp_metadata
from tests.security.saml_forge import session_keys

METADATA_URL = "https://idp.acme.example/saml/metadata"


@pytest.fixture
def hubgate(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    env = {
        "HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url,
        "HUBGATE_SECRET_KEY": None, "HUBGATE_BASE_URL": None,
    }  # fmt: skip
    runner = CliRunner(env=env)

    def run(*args: str, stdin: str | None = None) -> Result:
        result = runner.invoke(main, list(args), input=stdin)
        assert "Traceback" not in result.output
        return result

    return run


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, world: World) -> Provider:
    world.org("acme", world.user("admin@acme.example"))
    return install(monkeypatch)


def _fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Metadata URLs fetched (through the guard), answered with the IdP's metadata."""
    asked: list[str] = []

    def fetch(url: str, **_: Any) -> bytes:
        network_guard.outbound(f"fake fetch {url}")
        asked.append(url)
        if url != METADATA_URL:
            raise BadRequest("unreachable", code="fetch_failed")
        return idp_metadata(session_keys().idp.cert_pem)

    monkeypatch.setattr(connections, "fetch", fetch)
    return asked


def test_an_oidc_connection_is_discovered_before_it_is_stored(
    hubgate: Any, provider: Provider
) -> None:
    added = hubgate(
        "sso", "connection", "add", "--org", "acme", "--oidc-issuer", ISSUER,
        "--client-id", CLIENT, "--client-secret-stdin", "--json", stdin=f"{SECRET}\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert shown["kind"] == "oidc" and shown["issuer"] == ISSUER and shown["state"] == "draft"


def test_list_shows_oidc_and_saml_connections_side_by_side(
    hubgate: Any, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It failed with a KeyError for any org with an OIDC connection."""
    oidc = hubgate(
        "sso", "connection", "add", "--org", "acme", "--oidc-issuer", ISSUER,
        "--client-id", CLIENT, "--client-secret-stdin", stdin=f"{SECRET}\n",
    )  # fmt: skip
    _fetched(monkeypatch)
    saml = hubgate("sso", "connection", "add", "--org", "acme", "--saml-metadata", METADATA_URL)
    assert oidc.exit_code == 0 and saml.exit_code == 0, (oidc.output, saml.output)
    listed = hubgate("sso", "connection", "list", "--org", "acme")
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert ["oidc", "draft"] == rows[1][1:3] and rows[1][-2:] == [ISSUER, "-"]
    assert ["saml", "draft"] == rows[2][1:3] and IDP in rows[2] and "days)" in rows[2]


def test_a_saml_connection_from_a_metadata_url_is_fetched_before_it_is_stored(
    hubgate: Any, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _fetched(monkeypatch)
    added = hubgate(
        "sso", "connection", "add", "--org", "acme", "--saml-metadata", METADATA_URL, "--json"
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["idp_entity_id"] == IDP
    assert asked == [METADATA_URL]


def test_an_unknown_org_is_refused_before_any_fetch(
    hubgate: Any, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _fetched(monkeypatch)
    monkeypatch.setattr(connections, "discover", lambda *_: asked.append("discovery"))
    for source in (["--saml-metadata", METADATA_URL], ["--oidc-issuer", ISSUER]):
        refused = hubgate("sso", "connection", "add", "--org", "nobody", *source, "--json")
        assert refused.exit_code == 1 and json.loads(refused.stderr)["error"] == "not_found"
    assert asked == []
