"""Memory per worker: the resident set (``VmRSS``) of each uvicorn worker of a
running hubgate (2 workers) seeded with 100,000 users and 10,000 tokens, after
``GET /auth/check`` has been asked about every token on several routes, twice
over (each request on a connection of its own, so both workers see nearly every
token and whatever a process keeps per token, principal or resource fills up).
Printed next to the target (< 300 MB per worker) and next to the floor: the same
server seeded small (the bench world of _server.seed, 2 tokens) and sent as many
checks, measured in the same run. Prints figures; asserts nothing.

    .venv/bin/python bench/memory.py [--users 100000] [--tokens 10000] [--routes 3]
    .venv/bin/python bench/memory.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_memory

``--database-url`` wipes that database's ``public`` schema (twice: floor, then
the large hub); without it each phase runs on a temporary SQLite file. The peak
(``VmHWM``) includes start-up, where each worker hashes a dummy password with
argon2id, which holds ``HUBGATE_PASSWORD_MEMORY_KIB`` (64 MiB by default) for a
moment; so does every password sign-in, per request thread.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

import _load as load
from _bulk import BulkToken, add_members
from _server import SeedSize, running, scratch_database, seed
from hubgate.access import ResourceKind
from hubgate.db.engine import create_database
from hubgate.db.models import Org, Resource

TARGET_MB = 300
_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Phase:
    """One server to measure: how many accounts and tokens to add in bulk, and
    how many rounds of checks each token gets."""

    label: str
    users: int
    tokens: int
    rounds: int
    passes: int


@dataclass(frozen=True, slots=True)
class Memory:
    """Kibibytes per worker process: now (``VmRSS``) and the peak (``VmHWM``)."""

    rss: list[int]
    peak: list[int]


@dataclass(frozen=True, slots=True)
class Measured:
    phase: Phase
    bulk_seconds: float
    checks: int
    check_seconds: float
    statuses: dict[int, int]
    started: Memory
    exercised: Memory


# -- the processes ----------------------------------------------------------


def workers_of(master: int) -> list[int]:
    """The uvicorn workers: children of the master that multiprocessing spawned
    (not its resource tracker), by process id."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # the process ended while being read
        if parent == master and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure given in kB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no {field}")


def memory(workers: Sequence[int]) -> Memory:
    return Memory(
        rss=[status_kib(pid, "VmRSS") for pid in workers],
        peak=[status_kib(pid, "VmHWM") for pid in workers],
    )


# -- the checks -------------------------------------------------------------


def routes_by_org(database_url: str) -> dict[str, list[tuple[str, str]]]:
    """Every resource of the seeded world as the request a client would make:
    ``POST .../predict`` (call) for a deployment, ``GET`` (read) otherwise."""
    database = create_database(database_url)
    try:
        with database.engine.connect() as connection:
            rows = connection.execute(
                select(Org.name, Resource.kind, Resource.name)
                .join(Org, Org.id == Resource.org_id)
                .order_by(Resource.id)
            ).all()
    finally:
        database.engine.dispose()
    routes: dict[str, list[tuple[str, str]]] = {}
    for org, kind, name in rows:
        plural = ResourceKind(kind).plural
        route = (
            ("POST", f"/{org}/{plural}/{name}/predict")
            if kind == ResourceKind.DEPLOYMENT.value
            else ("GET", f"/{org}/{plural}/{name}")
        )
        routes.setdefault(org, []).append(route)
    return routes


def check_requests(
    url: str, tokens: Sequence[BulkToken], routes: dict[str, list[tuple[str, str]]], phase: Phase
) -> list[bytes]:
    """``phase.passes`` times the same checks: ``phase.rounds`` rounds of every token,
    each round on the next route of the token's org (neighbouring tokens start
    at different routes)."""
    one_pass = []
    for round_ in range(phase.rounds):
        for number, token in enumerate(tokens):
            mine = routes[token.org]
            method, uri = mine[(number * 7 + round_) % len(mine)]
            headers = {
                "Authorization": f"Bearer {token.secret}",
                "X-Forwarded-Method": method,
                "X-Forwarded-Uri": uri,
            }
            one_pass.append(load.encode("GET", url, headers=headers))
    return one_pass * phase.passes


# -- one phase --------------------------------------------------------------


def measure(database_url: str, phase: Phase) -> Measured:
    """Seed, start hubgate, read its workers' memory, send the checks, read again."""
    seeded = seed(database_url, SeedSize())
    started_at = time.perf_counter()
    tokens = add_members(database_url, phase.users, phase.tokens)
    bulk_seconds = time.perf_counter() - started_at
    if not tokens:  # the floor: the bench user's personal token and its team's token
        org = seeded.private_model_uri.split("/")[1]
        tokens = [BulkToken(seeded.personal_token, org), BulkToken(seeded.team_token, org)]
    routes = routes_by_org(database_url)
    with running(database_url, workers=2) as server:
        url = f"{server.base_url}/auth/check"
        requests = check_requests(url, tokens, routes, phase)
        workers = workers_of(server.pid)
        if not workers:
            raise RuntimeError(f"no uvicorn worker among the children of {server.pid}")
        started = memory(workers)
        elapsed, _latencies, statuses = load.run(url, requests, _CONCURRENCY)
        exercised = memory(workers)
    return Measured(phase, bulk_seconds, len(requests), elapsed, statuses, started, exercised)


# -- report -----------------------------------------------------------------


def mb(kib: int) -> str:
    return f"{kib / 1024:6.1f} MB"


def report(measured: Measured) -> None:
    phase = measured.phase
    rate = measured.checks / measured.check_seconds
    print(
        f"\n{phase.label} (bulk insert {measured.bulk_seconds:.1f} s): {measured.checks:,} checks"
        f" in {measured.check_seconds:.1f} s ({rate:,.0f}/s), statuses {measured.statuses}"
    )
    for number, (start, rss, peak) in enumerate(
        zip(
            measured.started.rss,
            measured.exercised.rss,
            measured.exercised.peak,
            strict=True,
        ),
        start=1,
    ):
        verdict = "under" if rss < TARGET_MB * 1024 else "OVER"
        print(
            f"  worker {number}: RSS {mb(rss)} after the checks ({mb(start)} at start,"
            f" peak {mb(peak)}), {verdict} the {TARGET_MB} MB target"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--routes", type=int, default=3, help="checks per token per pass")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    floor = Phase(
        "floor: small seed, 2 tokens", users=0, tokens=0,
        rounds=args.tokens * args.routes // 2, passes=args.passes,
    )  # fmt: skip
    large = Phase(
        f"{args.users:,} more users, {args.tokens:,} tokens", users=args.users,
        tokens=args.tokens, rounds=args.routes, passes=args.passes,
    )  # fmt: skip
    print(f"hubgate memory per uvicorn worker (2 workers), target < {TARGET_MB} MB each")
    results = []
    for phase in (floor, large):
        with scratch_database(args.database_url) as url:
            results.append(measure(url, phase))
            report(results[-1])
    floor_rss, large_rss = (result.exercised.rss for result in results)
    growth = [b - a for a, b in zip(floor_rss, large_rss, strict=True)]
    print(f"\nlarge hub over the floor, per worker: {', '.join(mb(g) for g in growth)}")


if __name__ == "__main__":
    main()
