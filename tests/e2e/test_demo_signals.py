"""``hubgate demo`` stopped the ways supervisors stop it (systemd and Docker send
SIGTERM, a closed terminal SIGHUP, Ctrl+C SIGINT): each stops its dev IdP and
removes the IdP's temporary folder. SIGTERM used to leave the IdP running,
orphaned, holding its port for the next ``make demo``; and a SIGHUP that arrived
while a request was being served used to be swallowed by the event loop, leaving
the demo running: the signals are sent while requests keep coming."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, STARTUP_SECONDS, _healthy, _process, _wait_until, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("HUBGATE_TEST_DATABASE_URL")),
        reason="the demo runs on a SQLite file of its own: the SQLite run covers it",
    ),
]
HUBGATE = str(Path(sys.executable).with_name("hubgate"))
# The demo hashes its people's one password at start: cheaply, for a test.
FAST_HASHING = {"HUBGATE_PASSWORD_MEMORY_KIB": "1024", "HUBGATE_PASSWORD_TIME_COST": "1"}


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def _idp_folder(pid: int) -> Path:
    """The dev IdP's temporary folder, read from its command line (``--users``)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return Path(argv[argv.index(b"--users") + 1].decode()).parent


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except FileNotFoundError:
        return True
    return state == "Z"  # exited, waiting for a parent to reap it


@contextmanager
def requests_coming(base_url: str, clients: int = 4, first: int = 200) -> Iterator[None]:
    """``clients`` threads asking for ``/healthz`` over and over until the block ends;
    the block starts once ``first`` answers have come, so requests are in flight.
    Each closes its connection as soon as the answer's head has come: the server
    learns of the close in one of its event loop's callbacks, where a signal
    handler's exception used to be swallowed (with old code, this test hung in two
    runs of three on SIGHUP)."""
    done, answered = threading.Event(), threading.Semaphore(0)

    def ask() -> None:
        while not done.is_set():
            with (
                suppress(OSError),
                urllib.request.urlopen(f"{base_url}/healthz", timeout=1.0),
            ):
                pass
            answered.release()

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(first):
            assert answered.acquire(timeout=STARTUP_SECONDS), "no answers from the demo"
        yield
    finally:
        done.set()
        for thread in threads:
            thread.join()


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_each_stop_signal_stops_the_dev_idp_and_removes_its_files(sent: signal.Signals) -> None:
    port, idp_port = free_port(), free_port()
    command = [
        HUBGATE, "demo", "--host", HOST, "--port", str(port), "--idp-port", str(idp_port),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")} | FAST_HASHING
    with tempfile.TemporaryDirectory(prefix="hubgate-demo-test-") as folder:
        log = Path(folder) / "demo.log"
        with _process(command, log, env=env, cwd=folder) as demo:
            _wait_until(lambda: _healthy(f"http://{HOST}:{port}"), demo, "hubgate demo", log)
            (idp,) = _children(demo.pid)
            idp_folder = _idp_folder(idp)
            assert idp_folder.is_dir()
            with requests_coming(f"http://{HOST}:{port}"):
                demo.send_signal(sent)
                demo.wait(30)
            deadline = time.monotonic() + 10
            while not _gone(idp) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _gone(idp), f"the dev IdP ({idp}) outlived the demo after {sent.name}"
            assert not idp_folder.exists()
