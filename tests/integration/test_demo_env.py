"""The ``.env`` that ``hubgate demo`` writes in its folder, so that the tour's CLI
commands (``hubgate sso setup-link``, ``mail outbox``, ``audit``) run there as
printed: development mode, the demo's database and URL, nothing secret; removed
when the demo stops; a ``.env`` the demo did not write is never touched.

The demo runs under a CliRunner with uvicorn's server replaced by one that reads the
settings, as a CLI command in the same folder would, while the demo "serves".
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result
from dotenv import dotenv_values

from hubgate import demo
from hubgate.cli import root as cli
from hubgate.cli.base import load
from hubgate.cli.root import main
from hubgate.config import Environment
from tests.conftest import StandInServer
from tests.ports import free_port

FAST_HASHING = {"HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}
# None of the caller's settings: what the CLI reads must come from the demo's .env.
NO_SETTINGS: dict[str, str | None] = {
    f"HUBGATE_{name}": None
    for name in ("ENV", "DATABASE_URL", "BASE_URL", "SECRET_KEY", "ALLOW_PRIVATE_IDP_URLS")
}
FOREIGN = "HUBGATE_SECRET_KEY=someone-elses-secret-of-at-least-32-chars\n"


def run_demo(idp_port: int, *args: str) -> Result:
    runner = CliRunner(env={**NO_SETTINGS, **FAST_HASHING})
    command = ["demo", "--port", "8123", "--idp-port", str(idp_port), *args]
    return runner.invoke(main, command)


@pytest.fixture
def unused_port() -> int:
    """For the dev IdP the demo starts (a real child process)."""
    return free_port()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What a CLI command in the demo's folder would see while the demo serves."""
    seen: list[dict[str, Any]] = []

    def serve(_config: uvicorn.Config) -> None:
        env_file = Path(".env")
        seen.append(
            {"file": env_file.read_text(), "values": dotenv_values(env_file), "settings": load()}
        )

    monkeypatch.setattr(cli.uvicorn, "Server", partial(StandInServer, during=serve))
    return seen


def test_the_cli_in_the_demos_folder_reads_the_demos_settings(
    folder: Path, serving: list[dict[str, Any]], unused_port: int
) -> None:
    result = run_demo(unused_port)
    assert result.exit_code == 0, result.output
    (seen,) = serving
    settings = seen["settings"]
    assert settings.env is Environment.DEV
    assert settings.database_url == f"sqlite:///{folder.resolve() / 'hubgate-demo.db'}"
    assert settings.base_url == "http://127.0.0.1:8123"
    assert settings.allow_private_idp_urls is True
    assert set(seen["values"]) == {
        "HUBGATE_ENV",
        "HUBGATE_DATABASE_URL",
        "HUBGATE_BASE_URL",
        "HUBGATE_ALLOW_PRIVATE_IDP_URLS",
    }  # fmt: skip  (no secret: development's built-in one is public)
    assert seen["file"].startswith(demo.ENV_MARK + "\n") and "NOT FOR PRODUCTION" in seen["file"]
    # Stopped: a later `hubgate serve` here must not inherit development mode.
    assert not (folder / ".env").exists()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".env")) == []


def test_a_env_left_by_an_earlier_demo_is_rewritten(
    folder: Path, serving: list[dict[str, Any]], unused_port: int
) -> None:
    (folder / ".env").write_text(f"{demo.ENV_MARK}\nHUBGATE_BASE_URL='http://127.0.0.1:1'\n")
    assert run_demo(unused_port).exit_code == 0
    assert serving[0]["settings"].base_url == "http://127.0.0.1:8123"
    assert not (folder / ".env").exists()


def test_a_env_the_demo_did_not_write_is_left_alone_and_the_demo_refuses(
    folder: Path, serving: list[dict[str, Any]], unused_port: int
) -> None:
    (folder / ".env").write_text(FOREIGN)
    result = run_demo(unused_port)
    assert result.exit_code == 2 and serving == []
    assert ".env exists and was not written by hubgate demo" in result.output
    assert (folder / ".env").read_text() == FOREIGN
    assert not (folder / "hubgate-demo.db").exists()


def test_a_env_that_is_a_link_is_not_followed(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, serving: list[dict[str, Any]],
    unused_port: int,
) -> None:  # fmt: skip
    """Even a link to a file that looks like the demo's own: refused, left as it is."""
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "settings"
    elsewhere.write_text(f"{demo.ENV_MARK}\n{FOREIGN}")
    (folder / ".env").symlink_to(elsewhere)
    result = run_demo(unused_port)
    assert result.exit_code == 2 and serving == []
    assert (folder / ".env").is_symlink() and elsewhere.read_text() == f"{demo.ENV_MARK}\n{FOREIGN}"


def test_a_database_path_that_env_cannot_carry_is_refused(
    folder: Path, serving: list[dict[str, Any]], unused_port: int
) -> None:
    """python-dotenv expands ${NAME} even in single quotes: the path would change."""
    result = run_demo(unused_port, "--db", "demo-${HOME}.db")
    assert result.exit_code == 2 and serving == []
    assert "cannot go into .env" in result.output
    assert not (folder / ".env").exists()


def test_quoted_values_read_back_as_written(tmp_path: Path) -> None:
    settings = load(env="dev", database_url="sqlite:////tmp/it's a \\ $HOME.db")
    demo.write_env_file(tmp_path, settings)
    values = dotenv_values(tmp_path / ".env")
    assert values["HUBGATE_DATABASE_URL"] == "sqlite:////tmp/it's a \\ $HOME.db"
