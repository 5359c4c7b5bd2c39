"""The CLI commands ``hubgate demo``'s tour prints run as printed, from the
demo's folder, in a shell that sets no ``HUBGATE_*``: the demo's ``.env`` makes
them reach the demo's database and URL. They used to fail (production mode, no
secret, another database) unless one exported the demo's settings by hand. And
``make demo`` takes both ports."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, _healthy, _process, _wait_until
from tests.ports import free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("HUBGATE_TEST_DATABASE_URL")),
        reason="the demo runs on a SQLite file of its own: the SQLite run covers it",
    ),
]
REPO = Path(__file__).resolve().parents[2]
HUBGATE = str(Path(sys.executable).with_name("hubgate"))
FAST_HASHING = {"HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}


def tour_commands(tour: str) -> list[list[str]]:
    """The command lines the tour prints on lines of their own (six spaces in)."""
    return [shlex.split(line) for line in re.findall(r"^ {6}(\S.*)$", tour, re.MULTILINE)]


def test_the_tours_cli_commands_run_from_the_demos_folder(tmp_path: Path) -> None:
    port, idp_port = free_port(), free_port()
    base_url = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    log = tmp_path / "demo.log"
    command = [HUBGATE, "demo", "--port", str(port), "--idp-port", str(idp_port)]
    with _process(command, log, env=env | FAST_HASHING, cwd=str(tmp_path)) as demo:
        _wait_until(lambda: _healthy(base_url), demo, "hubgate demo", log)
        commands = tour_commands(log.read_text())
        assert [c[1:3] for c in commands] == [["sso", "setup-link"], ["mail", "outbox"],
                                               ["audit", "--org"]], commands  # fmt: skip
        outputs = []
        for printed in commands:
            done = subprocess.run(
                printed, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"{printed}:\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
        link, outbox, audit = outputs
        assert re.fullmatch(rf"{re.escape(base_url)}/setup/\S+\n", link), link
        assert link.strip() in outbox and "to it@initech.test" in outbox
        assert "setup.link_created" in audit and "it@initech.test" in audit
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0, log.read_text()
    assert not (tmp_path / ".env").exists()


def test_make_demo_takes_both_ports() -> None:
    """``make -n`` prints the commands without running them."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "IDP_PORT")}
    make = ["make", "-n", "-C", str(REPO), "demo", "VENV=/nonexistent-venv"]
    shown = subprocess.run(
        [*make, "PORT=9180", "IDP_PORT=9181"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "/nonexistent-venv/bin/hubgate demo --port 9180 --idp-port 9181\n" in shown, shown
    default = subprocess.run(make, env=env, capture_output=True, text=True, check=True).stdout
    assert "/nonexistent-venv/bin/hubgate demo --port 8000 --idp-port 8001\n" in default
