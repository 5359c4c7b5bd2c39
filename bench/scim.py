"""SCIM provisioning against a running hubgate (2 uvicorn workers) on loopback:
Users created per second through ``POST /Users``, the time to create ``--users``
of them, how long ``GET /healthz`` waits meanwhile, ``filter=userName eq "..."``
latency over every User the org then has, and one Group PATCH adding
``--members`` members. Prints figures; asserts no timing.

Creating 100,000 Users through HTTP takes long on a small machine; ``--users
10000`` measures ten thousand and the closing line extrapolates to 100,000 (said
as such). ``--seed 90000`` first creates that many in process, through the same
service call the endpoint makes, in batches of 1,000 per transaction, so the
filter is measured at 100,000 Users. Requests go out pre-encoded, one connection
each (see _load.py), so the client takes little of the machine.

    .venv/bin/python bench/scim.py [--users 10000] [--seed 0] [--members 10000]
        [--concurrency 16] [--samples 500] [--warmup 50]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_scim]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _load as load  # noqa: E402
from _server import scratch_database, serve  # noqa: E402
from hubgate.access import Principal  # noqa: E402
from hubgate.accounts import users  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.operator import operator_principal  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.provisioning import tokens  # noqa: E402
from hubgate.provisioning import users as scim_users  # noqa: E402
from hubgate.runtime import Runtime, build_runtime  # noqa: E402
from hubgate.sso import domains  # noqa: E402

DOMAIN = "bench-scim.example"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA = "application/scim+json"


def _runtime(database_url: str) -> Runtime:
    return build_runtime(
        load_settings(
            env="dev", database_url=database_url, password_memory_kib=1024, password_time_cost=1
        )
    )


def prepare(database_url: str) -> str:
    """Org ``bench`` with a verified domain and a SCIM token; returns the token."""
    rt = _runtime(database_url)
    try:
        with rt.db.transaction() as db:
            admin = users.create_user(db, rt, f"admin@{DOMAIN}", password=None, verified=True)
            org = service.create_org(db, Actor.system(), "bench", None, admin)
            domains.add(db, rt, Actor.system(), operator_principal(), org, DOMAIN)
            domains.verify_by_operator(db, rt, Actor.system(), org, DOMAIN)
            _, secret = tokens.create(db, Actor.system(), Principal.operator(), org, "bench")
        return secret
    finally:
        rt.db.engine.dispose()


def seed(database_url: str, start: int, count: int) -> float:
    """``count`` Users made in process by the endpoint's own service call; seconds."""
    rt = _runtime(database_url)
    actor = Actor.system("bench-seed")
    began = time.perf_counter()
    try:
        for batch in range(start, start + count, 1000):
            with rt.db.transaction() as db:
                org = service.get_org(db, "bench")
                for index in range(batch, min(batch + 1000, start + count)):
                    scim_users.create(db, rt, actor, org, user_body(index))
    finally:
        rt.db.engine.dispose()
    return time.perf_counter() - began


def user_body(index: int) -> dict[str, object]:
    email = f"user{index:06d}@{DOMAIN}"
    return {
        "schemas": [USER], "userName": email, "externalId": f"ext-{index}", "active": True,
        "name": {"givenName": "User", "familyName": f"{index:06d}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
    }  # fmt: skip


def create_users(
    base: str, headers: dict[str, str], first: int, count: int, concurrency: int
) -> tuple[float, list[str], dict[int, int]]:
    """POST ``count`` Users with ``concurrency`` requests in flight."""
    url = f"{base}/Users"
    requests = [
        load.encode("POST", url, json.dumps(user_body(i)).encode(), headers)
        for i in range(first, first + count)
    ]
    bodies: list[bytes] = []
    elapsed, _, statuses = load.run(url, requests, concurrency, bodies)
    ids = [json.loads(body)["id"] for body in bodies if b'"id"' in body]
    return elapsed, ids, statuses


class Prober(threading.Thread):
    """``GET /healthz`` one at a time, 10 ms apart, until stopped: how long any
    other request (a sign-in, a forward-auth check) waits while SCIM keeps the
    workers busy."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.target = f"{base_url}/healthz"
        self.latencies: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        request = load.encode("GET", self.target)
        while not self.done.wait(0.01):
            self.latencies += load.run(self.target, [request], 1)[1]

    def __enter__(self) -> Prober:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def filter_latencies(
    base: str, headers: dict[str, str], count: int, samples: int, warmup: int
) -> tuple[list[float], list[float]]:
    """One request at a time, each for a random existing userName (other case).

    The first ``warmup`` requests are timed apart: the first filters after the
    creates run slower (up to 31 ms against under 9 ms after them, at 100,000 Users),
    likely while each worker and each pooled connection sees the statement first."""
    latencies = []
    for step in range(warmup + samples):
        index = (step * 7919) % count
        wanted = f"USER{index:06d}@{DOMAIN.upper()}"
        url = f"{base}/Users?" + urlencode({"filter": f'userName eq "{wanted}"'})
        bodies: list[bytes] = []
        _, took, statuses = load.run(url, [load.encode("GET", url, b"", headers)], 1, bodies)
        latencies += took
        if statuses != {200: 1} or json.loads(bodies[0])["totalResults"] != 1:
            raise SystemExit(f"filter for {wanted} answered {statuses}: {bodies[0][:300]!r}")
    return latencies[:warmup], latencies[warmup:]


def group_patch(base: str, headers: dict[str, str], member_ids: list[str]) -> tuple[float, int]:
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        created = client.post("/Groups", json={"schemas": [GROUP], "displayName": "everyone"})
        group_id = created.json()["id"]
        body = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": m} for m in member_ids]}
            ],
        }
        started = time.perf_counter()
        answer = client.patch(f"/Groups/{group_id}", json=body)
        elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"group PATCH answered {answer.status_code}: {answer.text[:300]}")
    return elapsed, len(answer.json().get("members", []))


def _ms(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * quantile) - 1, 0)] * 1000


def run(base_url: str, secret: str, args: argparse.Namespace) -> None:
    base = f"{base_url}/scim/v2/bench"
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": MEDIA}
    with Prober(base_url) as prober:
        elapsed, ids, statuses = create_users(
            base, headers, args.seed, args.users, args.concurrency
        )
    rate = len(ids) / elapsed
    print(
        f"create   {len(ids):>7} Users in {elapsed:7.1f} s  {rate:6.0f}/s"
        f"  statuses {dict(sorted(statuses.items()))}"
    )
    waits = prober.latencies
    print(
        f"         GET /healthz meanwhile: p50 {statistics.median(waits) * 1000:.1f} ms"
        f"  p99 {_ms(waits, 0.99):.1f} ms  max {max(waits) * 1000:.0f} ms  ({len(waits)} probes)"
    )
    if args.users < 100_000:
        print(f"         100,000 Users at that rate: ~{100_000 / rate:.0f} s (extrapolated)")
    total = args.seed + len(ids)
    first, latencies = filter_latencies(base, headers, total, args.samples, args.warmup)
    p50 = statistics.median(latencies) * 1000
    print(
        f"filter   userName eq at {total} Users: p50 {p50:.1f} ms"
        f"  p99 {_ms(latencies, 0.99):.1f} ms  max {max(latencies) * 1000:.1f} ms"
        f"  ({args.samples} requests, one at a time)"
    )
    if first:
        print(
            f"         the {len(first)} warm-up requests before them:"
            f" p50 {statistics.median(first) * 1000:.1f} ms  max {max(first) * 1000:.1f} ms"
        )
    members = ids[: args.members]
    took, held = group_patch(base, headers, members)
    print(f"patch    Group add {len(members)} members: {took:.2f} s (group holds {held})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="Users made in process first")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50, help="filter requests timed apart")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with scratch_database(args.database_url) as database_url:
        kind = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        print(f"SCIM on {kind}, 2 uvicorn workers, {args.concurrency} requests in flight")
        secret = prepare(database_url)
        if args.seed:
            took = seed(database_url, 0, args.seed)
            print(f"seeded   {args.seed:>7} Users in process in {took:.0f} s")
        with serve(database_url, workers=2) as base_url:
            run(base_url, secret, args)


if __name__ == "__main__":
    main()
