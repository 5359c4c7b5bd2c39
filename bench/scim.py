"""SCIM provisioning against a running hubgate (2 uvicorn workers) on loopback:
Users created per second through ``POST /Users``, the time to create ``--users``
of them, ``filter=userName eq "..."`` latency at that size, and one Group PATCH
adding ``--members`` members. Prints figures; asserts no timing.

Creating 100,000 Users takes long on a small machine; ``--users 10000`` measures
ten thousand and the closing line extrapolates to 100,000 (said as such).

    .venv/bin/python bench/scim.py [--users 10000] [--members 10000] [--concurrency 16]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_scim]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _server import scratch_database, serve  # noqa: E402
from hubgate.accounts import users  # noqa: E402
from hubgate.audit import Actor  # noqa: E402
from hubgate.cli_operator import operator_principal  # noqa: E402
from hubgate.config import load_settings  # noqa: E402
from hubgate.orgs import service  # noqa: E402
from hubgate.runtime import build_runtime  # noqa: E402
from hubgate.scim import tokens  # noqa: E402
from hubgate.sso import domains  # noqa: E402

DOMAIN = "bench-scim.example"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA = "application/scim+json"


def prepare(database_url: str) -> str:
    """Org ``bench`` with a verified domain and a SCIM token; returns the token."""
    settings = load_settings(
        env="dev", database_url=database_url, password_memory_kib=1024, password_time_cost=1
    )
    rt = build_runtime(settings)
    try:
        with rt.db.transaction() as db:
            admin = users.create_user(db, rt, f"admin@{DOMAIN}", password=None, verified=True)
            org = service.create_org(db, Actor.system(), "bench", None, admin)
            domains.add(db, rt, Actor.system(), operator_principal(org), org, DOMAIN)
            domains.verify_by_operator(db, Actor.system(), org, DOMAIN)
            _, secret = tokens.create(db, Actor.system(), None, org, "bench")
        return secret
    finally:
        rt.db.engine.dispose()


def user_body(index: int) -> dict[str, object]:
    email = f"user{index:06d}@{DOMAIN}"
    return {
        "schemas": [USER], "userName": email, "externalId": f"ext-{index}", "active": True,
        "name": {"givenName": "User", "familyName": f"{index:06d}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
    }  # fmt: skip


async def create_users(
    client: httpx.AsyncClient, count: int, concurrency: int
) -> tuple[float, list[str], dict[int, int]]:
    """POST ``count`` Users with ``concurrency`` requests in flight."""
    ids: list[str] = []
    statuses: dict[int, int] = {}
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            answer = await client.post("/Users", json=user_body(index))
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 201:
                ids.append(answer.json()["id"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, ids, statuses


async def filter_latencies(client: httpx.AsyncClient, count: int, samples: int) -> list[float]:
    """One request at a time, each for a random existing userName (other case)."""
    latencies = []
    for step in range(samples):
        index = (step * 7919) % count
        wanted = f"USER{index:06d}@{DOMAIN.upper()}"
        started = time.perf_counter()
        answer = await client.get("/Users", params={"filter": f'userName eq "{wanted}"'})
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200 or answer.json()["totalResults"] != 1:
            raise SystemExit(f"filter for {wanted} answered {answer.status_code}: {answer.text}")
    return latencies


async def group_patch(client: httpx.AsyncClient, member_ids: list[str]) -> tuple[float, int]:
    created = await client.post("/Groups", json={"schemas": [GROUP], "displayName": "everyone"})
    group_id = created.json()["id"]
    body = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": m} for m in member_ids]}
        ],
    }
    started = time.perf_counter()
    answer = await client.patch(f"/Groups/{group_id}", json=body, timeout=300)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"group PATCH answered {answer.status_code}: {answer.text[:300]}")
    return elapsed, len(answer.json().get("members", []))


def _ms(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * quantile) - 1, 0)] * 1000


async def run(base_url: str, secret: str, args: argparse.Namespace) -> None:
    headers = {"authorization": f"Bearer {secret}", "content-type": MEDIA}
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=f"{base_url}/scim/v2/bench", headers=headers, limits=limits, timeout=60
    ) as client:
        elapsed, ids, statuses = await create_users(client, args.users, args.concurrency)
        rate = len(ids) / elapsed
        print(
            f"create   {len(ids):>7} Users in {elapsed:7.1f} s  {rate:6.0f}/s"
            f"  statuses {dict(sorted(statuses.items()))}"
        )
        if args.users < 100_000:
            print(f"         100,000 Users at that rate: ~{100_000 / rate:.0f} s (extrapolated)")
        latencies = await filter_latencies(client, len(ids), args.samples)
        p50 = statistics.median(latencies) * 1000
        print(
            f"filter   userName eq at {len(ids)} Users: p50 {p50:.1f} ms"
            f"  p99 {_ms(latencies, 0.99):.1f} ms  ({args.samples} requests, one at a time)"
        )
        members = ids[: args.members]
        took, held = await group_patch(client, members)
        print(f"patch    Group add {len(members)} members: {took:.2f} s (group holds {held})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with scratch_database(args.database_url) as database_url:
        kind = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        print(f"SCIM on {kind}, 2 uvicorn workers, {args.concurrency} requests in flight")
        secret = prepare(database_url)
        with serve(database_url, workers=2) as base_url:
            asyncio.run(run(base_url, secret, args))


if __name__ == "__main__":
    main()
