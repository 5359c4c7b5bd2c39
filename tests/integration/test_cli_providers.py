"""``hubgate provider add|list|remove`` from the outside: discovery is fetched
before the storing transaction (the fake goes through tests/network_guard.py),
the secret is read from stdin and never shown, bad input changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubgate.db.models import PlatformProvider
from hubgate.runtime import Runtime
from tests.integration.sso_world import count
from tests.integration.test_cli_sso import hubgate  # noqa: F401 (the fixture)
from tests.integration.test_oidc_flow import CLIENT, ISSUER, SECRET, Provider, install


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return install(monkeypatch)


def _add(hubgate: Any, *extra: str, stdin: str = f"{SECRET}\n") -> Any:  # noqa: F811
    return hubgate(
        "provider", "add", "--oidc-issuer", ISSUER, "--client-id", CLIENT,
        "--client-secret-stdin", "--json", *extra, stdin=stdin,
    )  # fmt: skip


def test_add_list_and_remove(hubgate: Any, rt: Runtime, provider: Provider) -> None:  # noqa: F811
    added = _add(hubgate, "--name", "Google")
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert shown["name"] == "Google" and shown["issuer"] == ISSUER
    assert shown["redirect_uri"].endswith(f"/sso/platform/{shown['id']}/callback")
    assert SECRET not in added.output
    listed = hubgate("provider", "list", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)] == ["Google"]
    assert SECRET not in listed.output
    assert hubgate("provider", "remove", str(shown["id"])).exit_code == 0
    assert count(rt, PlatformProvider) == 0
    gone = hubgate("provider", "remove", str(shown["id"]))
    assert gone.exit_code == 1 and "provider_unknown" in gone.output


def test_bad_input_is_refused_and_stores_nothing(
    hubgate: Any,  # noqa: F811
    rt: Runtime,
    provider: Provider,
) -> None:
    assert "provider_name_invalid" in _add(hubgate, "--name", "<script>").output
    assert "setting_invalid" in _add(hubgate, "--name", "Google", stdin="\n").output
    no_stdin = hubgate("provider", "add", "--oidc-issuer", ISSUER, "--client-id", CLIENT,
                       "--name", "Google")  # fmt: skip
    assert no_stdin.exit_code != 0
    wrong = hubgate(
        "provider", "add", "--oidc-issuer", "https://elsewhere.example", "--client-id", CLIENT,
        "--client-secret-stdin", "--name", "X", stdin=f"{SECRET}\n",
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert count(rt, PlatformProvider) == 0


def test_github_and_an_enterprise_server(hubgate: Any, rt: Runtime) -> None:  # noqa: F811
    def add(*extra: str) -> Any:
        return hubgate(
            "provider", "add", "--github", "--client-id", "Iv1.x", "--client-secret-stdin",
            "--json", *extra, stdin=f"{SECRET}\n",
        )  # fmt: skip

    com = json.loads(add().stdout)
    assert com["kind"] == "github" and com["name"] == "GitHub"
    assert com["issuer"] == "https://github.com"
    ghe = json.loads(add("--base-url", "https://ghe.example.com/", "--name", "Work").stdout)
    assert ghe["issuer"] == "https://ghe.example.com" and ghe["name"] == "Work"
    assert "setting_invalid" in add("--base-url", "https://ghe.example.com/x").output
    both = hubgate("provider", "add", "--github", "--oidc-issuer", ISSUER, "--client-id", "x",
                   "--client-secret-stdin", stdin="s\n")  # fmt: skip
    assert both.exit_code != 0
    assert count(rt, PlatformProvider) == 2
