"""Access-decision throughput: ``decide()`` on one core, and ``GET /auth/check``
against a running hubgate (2 uvicorn workers) under a loopback load generator.

Run::

    .venv/bin/python bench/access.py                 # SQLite, full run
    .venv/bin/python bench/access.py --quick         # a few-second smoke run
    .venv/bin/python bench/access.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

``--database-url`` wipes that database's ``public`` schema. Figures are printed
next to the targets; nothing is asserted (benchmarks print, tests never time).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from _server import Seeded, SeedSize, scratch_database, seed, serve
from hubgate.access import (
    Action,
    CredentialKind,
    OrgRole,
    OrgTarget,
    Principal,
    ResourceKind,
    ResourceTarget,
    Scope,
    SsoState,
    Target,
    TeamRole,
    TeamTarget,
    Visibility,
    decide,
)
from hubgate.accounts import sessions

DECIDE_TARGET = 500_000
CHECK_RPS_TARGET = 5_000
CHECK_FLOOR_RATIO_TARGET = 3.0
CHECK_P99_TARGET_MS = 5.0
P99_CONNECTIONS = 8

Case = tuple[Principal, Action, Target]
_QUICK_SEED = SeedSize(orgs=2, users=30, teams_per_org=2, resources=40)


@dataclass(frozen=True, slots=True)
class Plan:
    """How long and how hard to measure."""

    decide_calls: int
    seed_size: SeedSize
    warmup_seconds: int
    seconds: int
    connections: int
    workers: int
    client: str


def plan_from(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    return Plan(
        decide_calls=200_000 if quick else 1_000_000,
        seed_size=_QUICK_SEED if quick else SeedSize(),
        warmup_seconds=1 if quick else 3,
        seconds=2 if quick else args.seconds,
        connections=args.connections,
        workers=args.workers,
        client=args.client,
    )


# -- decide() ---------------------------------------------------------------

_ORGS = (1, 2, 3, 4)
_TEAMS = {org: tuple(org * 10 + k for k in range(4)) for org in _ORGS}
_USERS = 300
_ORG_ROLES = tuple(OrgRole)
_ORG_ROLE_WEIGHTS = (35, 20, 30, 15)
_ACTIONS = tuple(Action)
_ACTION_WEIGHTS = (60, 5, 10, 4, 12, 4, 5)  # read create write deploy call delete admin
_KINDS = tuple(ResourceKind)
_KIND_WEIGHTS = (40, 25, 15, 20)
_SSO = (SsoState.NOT_REQUIRED, SsoState.FRESH, SsoState.STALE)
_SSO_WEIGHTS = (85, 10, 5)
_PERSONAL_SCOPES = (frozenset({Scope.READ}), frozenset({Scope.READ, Scope.WRITE}))
_TEAM_SCOPES = (
    frozenset({Scope.READ}),
    frozenset({Scope.FULL}),
    frozenset({Scope.INFERENCE}),
    frozenset({Scope.FULL, Scope.INFERENCE}),
)


def decide_cases(count: int, rng: random.Random) -> list[Case]:
    """A realistic mix: members of every role by session or personal token, team
    tokens, a few anonymous callers and outsiders; mostly reads of resources."""
    cases: list[Case] = []
    for _ in range(count):
        principal = _principal(rng)
        action = rng.choices(_ACTIONS, _ACTION_WEIGHTS)[0]
        cases.append((principal, action, _target(rng, principal)))
    return cases


def _principal(rng: random.Random) -> Principal:
    roll = rng.random()
    if roll < 0.55:
        return _member(rng, CredentialKind.SESSION, frozenset())
    if roll < 0.80:
        return _member(rng, CredentialKind.PERSONAL_TOKEN, rng.choice(_PERSONAL_SCOPES))
    if roll < 0.92:
        return _team_token(rng)
    if roll < 0.97:
        return Principal.anonymous()
    return Principal(credential=CredentialKind.SESSION, user_id=rng.randint(1, _USERS))


def _member(rng: random.Random, kind: CredentialKind, scopes: frozenset[Scope]) -> Principal:
    org = rng.choice(_ORGS)
    teams = rng.sample(_TEAMS[org], rng.randint(0, 3))
    return Principal(
        credential=kind,
        user_id=rng.randint(1, _USERS),
        org_id=org,
        org_role=rng.choices(_ORG_ROLES, _ORG_ROLE_WEIGHTS)[0],
        team_roles={team: rng.choice(tuple(TeamRole)) for team in teams},
        scopes=scopes,
        revoked=kind is CredentialKind.PERSONAL_TOKEN and rng.random() < 0.01,
        sso=rng.choices(_SSO, _SSO_WEIGHTS)[0],
    )


def _team_token(rng: random.Random) -> Principal:
    org = rng.choice(_ORGS)
    return Principal(
        credential=CredentialKind.TEAM_TOKEN,
        org_id=org,
        scopes=rng.choice(_TEAM_SCOPES),
        token_team_id=rng.choice(_TEAMS[org]),
    )


def _target(rng: random.Random, principal: Principal) -> Target:
    """Nine in ten targets sit in the caller's own org."""
    org = principal.org_id if principal.org_id and rng.random() < 0.9 else rng.choice(_ORGS)
    roll = rng.random()
    if roll < 0.05:
        return OrgTarget(org)
    if roll < 0.10:
        return TeamTarget(org, rng.choice(_TEAMS[org]))
    own = principal.user_id is not None and rng.random() < 0.15
    return ResourceTarget(
        org_id=org,
        kind=rng.choices(_KINDS, _KIND_WEIGHTS)[0],
        visibility=Visibility.PRIVATE if rng.random() < 0.6 else Visibility.PUBLIC,
        team_id=rng.choice(_TEAMS[org]) if rng.random() < 0.5 else None,
        creator_id=principal.user_id if own else rng.randint(1, _USERS),
    )


def decisions_per_second(cases: Sequence[Case], calls: int, rounds: int = 3) -> tuple[float, float]:
    """Best of ``rounds`` runs of at least ``calls`` calls over ``cases``: by the wall
    clock (``perf_counter``), and by this thread's CPU time (steadier on a busy host)."""
    repeats = math.ceil(calls / len(cases))
    timings = [_time_decide(cases, repeats) for _ in range(rounds)]
    total = repeats * len(cases)
    return total / min(wall for wall, _ in timings), total / min(cpu for _, cpu in timings)


def _time_decide(cases: Sequence[Case], repeats: int) -> tuple[float, float]:
    check = decide
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(repeats):
        for principal, action, target in cases:
            check(principal, action, target)
    return time.perf_counter() - wall, time.thread_time() - cpu


def allowed_share(cases: Sequence[Case]) -> float:
    return sum(decide(*case).allowed for case in cases) / len(cases)


# -- /auth/check ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Load:
    tool: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def scenarios(base_url: str, seeded: Seeded) -> list[Scenario]:
    uri = {"X-Original-URI": seeded.private_model_uri, "X-Original-Method": "GET"}
    cookie = _session_cookie(base_url, seeded)
    return [
        Scenario("personal token", {**uri, "Authorization": f"Bearer {seeded.personal_token}"}),
        Scenario("session cookie", {**uri, "Cookie": f"{sessions.COOKIE}={cookie}"}),
    ]


def _session_cookie(base_url: str, seeded: Seeded) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/login",
        json={"email": seeded.email, "password": seeded.password},
        timeout=30.0,
    )
    cookie = response.cookies.get(sessions.COOKIE)
    if response.status_code != 200 or not cookie:
        raise SystemExit(f"login failed: {response.status_code} {response.text[:300]}")
    return cookie


def verify(base_url: str, cases: Sequence[Scenario], seeded: Seeded) -> None:
    """Refuse to measure errors: each scenario answers 200, no credential 401."""
    url = f"{base_url}/auth/check"
    for case in cases:
        response = httpx.get(url, headers=case.headers, timeout=10.0)
        if response.status_code != 200 or "x-hubgate-user" not in response.headers:
            raise SystemExit(
                f"{case.name}: expected 200 with X-Hubgate-User, got {response.status_code} "
                f"{dict(response.headers)}"
            )
    anonymous = httpx.get(url, headers={"X-Original-URI": seeded.private_model_uri})
    if anonymous.status_code != 401:
        raise SystemExit(f"no credential: expected 401, got {anonymous.status_code}")


def measure(url: str, headers: dict[str, str], plan: Plan, connections: int) -> Load:
    use_wrk = plan.client == "wrk" or (plan.client == "auto" and shutil.which("wrk"))
    run = _wrk if use_wrk else _httpx_load
    run(url, headers, connections, plan.warmup_seconds)
    return run(url, headers, connections, plan.seconds)


# wrk ---------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def _wrk(url: str, headers: dict[str, str], connections: int, seconds: int) -> Load:
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *header_args, url]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> Load:
    """Read requests/s, the 50% and 99% latency, non-2xx and socket errors."""
    rate, total = _WRK_RATE.search(output), _WRK_TOTAL.search(output)
    if rate is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    non_2xx = _WRK_NON_2XX.search(output)
    socket = _WRK_SOCKET.search(output)
    return Load(
        tool="wrk",
        requests=int(total.group(1)),
        requests_per_second=float(rate.group(1)),
        p50_ms=_wrk_percentile(output, "50"),
        p99_ms=_wrk_percentile(output, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


def _wrk_percentile(output: str, percent: str) -> float:
    found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if found is None:
        raise SystemExit(f"wrk printed no {percent}% latency (was --latency given?)")
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


# httpx fallback ----------------------------------------------------------


def _httpx_load(url: str, headers: dict[str, str], connections: int, seconds: int) -> Load:
    return asyncio.run(_httpx_load_async(url, headers, connections, seconds))


async def _httpx_load_async(
    url: str, headers: dict[str, str], connections: int, seconds: int
) -> Load:
    """``connections`` keep-alive clients in a loop; a Python client saturates
    sooner than wrk, so its figures are a floor."""
    latencies: list[float] = []
    failures = [0, 0]  # non-2xx, transport errors
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=5.0, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def one_connection() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    failures[1] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                failures[0] += not response.is_success

        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Load(
        tool="httpx",
        requests=len(latencies),
        requests_per_second=len(latencies) / elapsed,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        non_2xx=failures[0],
        socket_errors=failures[1],
    )


# -- report -----------------------------------------------------------------


def print_http(name: str, load: Load) -> None:
    print(
        f"{name:<32} {load.requests_per_second:>9,.0f} req/s  "
        f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms  "
        f"({load.requests:,} requests by {load.tool}; non-2xx {load.non_2xx}, "
        f"socket errors {load.socket_errors})"
    )


def print_table(decide_rate: float, floor: Load, loads: dict[str, tuple[Load, Load]]) -> None:
    """The figures next to the issue's targets; the floor is ``GET /healthz`` of
    the same server, same load generator, same run."""
    print(f"\n{'figure':<44} {'measured':>20}  {'target':<18} met")
    _row("decide() decisions/s", f"{decide_rate:,.0f}", f">= {DECIDE_TARGET:,}",
         decide_rate >= DECIDE_TARGET)  # fmt: skip
    _row("floor: GET /healthz req/s", f"{floor.requests_per_second:,.0f}", "", True)
    for name, (wide, narrow) in loads.items():
        rate, ratio = wide.requests_per_second, wide.requests_per_second / floor.requests_per_second
        _row(f"/auth/check {name} req/s", f"{rate:,.0f}", f">= {CHECK_RPS_TARGET:,}",
             rate >= CHECK_RPS_TARGET)  # fmt: skip
        _row(f"/auth/check {name} / floor", f"{ratio:.2f}x", f">= {CHECK_FLOOR_RATIO_TARGET:g}x",
             ratio >= CHECK_FLOOR_RATIO_TARGET)  # fmt: skip
        _row(f"/auth/check {name} p50 / p99 at {P99_CONNECTIONS} conns",
             f"{narrow.p50_ms:.2f} / {narrow.p99_ms:.2f} ms", f"p99 <= {CHECK_P99_TARGET_MS:g} ms",
             narrow.p99_ms <= CHECK_P99_TARGET_MS)  # fmt: skip


def _row(label: str, measured: str, target: str, met: bool) -> None:
    verdict = ("yes" if met else "NO") if target else ""
    print(f"{label:<44} {measured:>20}  {target:<18} {verdict}")


def run_decide(plan: Plan) -> float:
    cases = decide_cases(5_000, random.Random(7))
    rate, cpu_rate = decisions_per_second(cases, plan.decide_calls)
    calls = math.ceil(plan.decide_calls / len(cases)) * len(cases)
    print(
        f"decide(): {rate:,.0f} decisions/s ({1e9 / rate:.0f} ns/call; {cpu_rate:,.0f}/s by "
        f"CPU time), best of 3 x {calls:,} calls over {len(cases):,} cases, "
        f"{allowed_share(cases):.0%} allowed; load average {os.getloadavg()[0]:.1f}"
    )
    return rate


def run_http(database_url: str | None, plan: Plan) -> tuple[Load, dict[str, tuple[Load, Load]]]:
    """The floor, then each scenario at ``plan.connections`` (throughput) and at
    :data:`P99_CONNECTIONS` (latency), against one server."""
    loads: dict[str, tuple[Load, Load]] = {}
    with scratch_database(database_url) as url:
        started = time.perf_counter()
        seeded = seed(url, plan.seed_size)
        dialect = url.split(":", 1)[0]
        print(f"seeded {dialect} in {time.perf_counter() - started:.1f}s: {seeded.counts}")
        with serve(url, workers=plan.workers) as base_url:
            cases = scenarios(base_url, seeded)
            verify(base_url, cases, seeded)
            print(
                f"server: {plan.workers} uvicorn workers on {base_url}; load: "
                f"{plan.connections} and {P99_CONNECTIONS} connections, {plan.seconds}s after "
                f"{plan.warmup_seconds}s warm-up; {os.cpu_count()} CPUs shared with the load "
                f"generator, load average {os.getloadavg()[0]:.1f} before measuring"
            )
            floor = measure(f"{base_url}/healthz", {}, plan, plan.connections)
            print_http("floor: GET /healthz", floor)
            check = f"{base_url}/auth/check"
            for case in cases:
                wide = measure(check, case.headers, plan, plan.connections)
                print_http(f"/auth/check {case.name}", wide)
                narrow = measure(check, case.headers, plan, P99_CONNECTIONS)
                print_http(f"/auth/check {case.name} ({P99_CONNECTIONS} conns)", narrow)
                loads[case.name] = (wide, narrow)
    return floor, loads


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--database-url", help="PostgreSQL URL to use (its schema is wiped)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    args = parser.parse_args(argv)
    if args.client == "auto" and shutil.which("wrk") is None:
        print(
            "wrk is not installed (make system-deps installs it): the load comes from a "
            "Python client, which saturates long before hubgate, so the figures below are "
            "the client's, not the gate's",
            file=sys.stderr,
        )
    plan = plan_from(args)
    decide_rate = run_decide(plan)
    floor, loads = run_http(args.database_url, plan)
    print_table(decide_rate, floor, loads)


if __name__ == "__main__":
    main()
