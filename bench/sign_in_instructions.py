"""Instructions hubgate executes per complete OIDC sign-in, counted by callgrind:
a figure that does not drift with the machine's load, unlike the sign-ins per
second of bench/oidc.py (whose OIDC phases this drives, with fewer browsers).

One uvicorn worker runs under ``valgrind --tool=callgrind`` with instrumentation
off; the people sign in once (just in time) and once more to warm up, then
instrumentation is switched on (``callgrind_control -i on``) for a third round,
their repeat sign-ins, and for ``--people`` ``GET /healthz`` requests after it,
each counted on its own (a dump after each): the framework's emptiest route is
the floor. The provider (bench/_oidc_provider.py) and this client are not counted.

    .venv/bin/python bench/sign_in_instructions.py [--people 60]

About a minute (valgrind runs the worker some fifty times slower). Prints; asserts
nothing about cost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load as load  # noqa: E402
import oidc  # noqa: E402
from _oidc_provider import running_provider  # noqa: E402
from _server import free_port, running, scratch_database  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.runtime import build_runtime  # noqa: E402
from login import Person, people  # noqa: E402

BROWSERS = 4


def _crowd(base: str, issuer: str, crowd: Sequence[Person]) -> dict[int, int]:
    _, tally = load.run_loop(oidc.crowd_signs_in(base, issuer, crowd, BROWSERS))
    return dict(tally.statuses)


async def _healthz(host: str, port: int, count: int) -> None:
    request = load.encode("GET", f"http://{host}:{port}/healthz")
    for _ in range(count):
        await load.exchange(host, port, request)


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise SystemExit(f"no total in {dump}")


def count(database_url: str, issuer: str, crowd: Sequence[Person], folder: Path) -> list[int]:
    """Instructions of the repeat sign-ins, then of as many ``/healthz``."""
    out = folder / "callgrind.out"
    valgrind = ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
    with running(database_url, workers=1, wrapper=valgrind, ready_seconds=300) as server:
        for _ in range(2):  # first sign-ins, then a repeat round to warm up
            _crowd(server.base_url, issuer, crowd)
        _control("-i", "on", str(server.pid))
        statuses = _crowd(server.base_url, issuer, crowd)
        _control("-d", str(server.pid))
        port = urlsplit(server.base_url).port or 80
        load.run_loop(_healthz("127.0.0.1", port, len(crowd)))
        _control("-d", str(server.pid))
    if statuses != {200: len(crowd)}:
        raise SystemExit(f"the sign-ins did not all succeed: {statuses}")
    return [_total(folder / f"callgrind.out.{n}") for n in (1, 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=60)
    args = parser.parse_args()
    secret = secrets.token_urlsafe(32)
    os.environ["HUBGATE_ALLOW_PRIVATE_IDP_URLS"] = "true"  # the provider is on loopback
    crowd = people("counted", args.people, oidc.OIDC_DOMAIN)
    accounts = {p.email: list(p.groups) for p in crowd}
    with (
        scratch_database(None) as url,
        running_provider(free_port(), secret, accounts) as issuer,
        tempfile.TemporaryDirectory(prefix="hubgate-callgrind-") as folder,
    ):
        rt = build_runtime(load_settings(env="dev", database_url=url, allow_private_idp_urls=True))
        oidc.prepare_oidc(rt, issuer, secret)
        sign_ins, healthz = count(url, issuer, crowd, Path(folder))
    per_sign_in, per_healthz = sign_ins / len(crowd), healthz / len(crowd)
    print(f"SQLite, 1 worker under callgrind, {len(crowd)} people, {BROWSERS} browsers")
    print(f"instructions per repeat OIDC sign-in (start + callback): {per_sign_in / 1e6:6.2f}M")
    print(f"instructions per GET /healthz (the floor):                {per_healthz / 1e6:6.2f}M")
    print(f"one sign-in costs {per_sign_in / per_healthz:.1f} /healthz requests")


if __name__ == "__main__":
    main()
