"""The dev IdP as a child process (``hubgate demo`` and the tests): start it on a
loopback port, wait until it answers, stop it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["IdpNotReady", "start", "stop", "wait_ready"]


class IdpNotReady(RuntimeError):
    """The dev IdP exited or did not answer in time."""


def start(
    users: Path, keys: Path, port: int, *, host: str = "127.0.0.1"
) -> subprocess.Popen[bytes]:
    """``python -m hubgate.devidp`` with this interpreter; it logs to our stdout and stderr."""
    command = [
        sys.executable, "-m", "hubgate.devidp", "--host", host, "--port", str(port),
        "--users", str(users), "--keys", str(keys),
    ]  # fmt: skip
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


def wait_ready(child: subprocess.Popen[bytes], base_url: str, timeout: float = 60.0) -> None:
    """Poll ``/healthz`` until it answers 200; refuse when the child exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise IdpNotReady(f"The dev IdP exited with code {child.returncode}.")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise IdpNotReady(f"The dev IdP did not answer at {base_url} within {timeout:.0f} s.")


def stop(child: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout)
