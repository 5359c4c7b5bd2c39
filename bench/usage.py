"""Token usage counting (hubgate.gate.usage): the cost of ``count()`` per call
next to floors from the same run (a bare dict increment, and one under a lock),
and the time of one flush of 10,000 (token, deployment, day) keys, first as new
rows, then as additions to existing ones. Prints figures; asserts nothing.

    .venv/bin/python bench/usage.py [--calls 1000000] [--database-url postgresql+psycopg://...]

``--database-url`` wipes that database's ``public`` schema.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _server import scratch_database  # noqa: E402
from hubgate.db.engine import Database, create_database  # noqa: E402
from hubgate.db.models import Org, Resource, Token, User  # noqa: E402
from hubgate.gate.usage import UsageCounter  # noqa: E402

TOKENS, DEPLOYMENTS = 100, 100  # 10,000 keys a day
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def per_call_ns(calls: int, body: Callable[[int], None]) -> float:
    """Best of three runs of ``body(calls)``, in nanoseconds per call."""
    runs = []
    for _ in range(3):
        start = time.perf_counter_ns()
        body(calls)
        runs.append((time.perf_counter_ns() - start) / calls)
    return min(runs)


def dict_floor(calls: int) -> None:
    counts: dict[tuple[int, int], int] = {}
    for i in range(calls):
        key = (i & 63, 7)
        counts[key] = counts.get(key, 0) + 1


def locked_floor(calls: int) -> None:
    counts: dict[tuple[int, int], int] = {}
    lock = threading.Lock()
    for i in range(calls):
        key = (i & 63, 7)
        with lock:
            counts[key] = counts.get(key, 0) + 1


def counted(calls: int) -> None:
    counter = UsageCounter()
    count = counter.count
    for i in range(calls):
        count(i & 63, 7, NOW)


def counted_by_two_threads(calls: int) -> None:
    counter = UsageCounter()
    threads = [
        threading.Thread(target=lambda: [counter.count(i & 63, 7, NOW) for i in range(calls // 2)])
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def seed(database: Database) -> tuple[list[int], list[int]]:
    """One person and org, ``TOKENS`` tokens and ``DEPLOYMENTS`` deployments."""
    with database.transaction() as db:
        user = User(display_name="bench", created_at=NOW)
        org = Org(name="bench", display_name="bench")
        db.add_all([user, org])
        db.flush()
        db.execute(insert(Token), [
            {"kind": "personal", "name": f"t{i}", "secret_hash": f"{i:064d}", "hint": "hg_",
             "user_id": user.id, "scopes": "write", "created_at": NOW}
            for i in range(TOKENS)
        ])  # fmt: skip
        db.execute(insert(Resource), [
            {"org_id": org.id, "kind": "deployment", "name": f"d{i}", "visibility": "private",
             "created_at": NOW}
            for i in range(DEPLOYMENTS)
        ])  # fmt: skip
        tokens = list(db.scalars(select(Token.id)))
        deployments = list(db.scalars(select(Resource.id)))
    return tokens, deployments


def flush_seconds(database: Database, tokens: list[int], deployments: list[int]) -> float:
    counter = UsageCounter()
    for token_id in tokens:
        for resource_id in deployments:
            counter.count(token_id, resource_id, NOW)
    start = time.perf_counter()
    written = counter.flush(database)
    elapsed = time.perf_counter() - start
    assert written == len(tokens) * len(deployments)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    figures = {
        "floor: dict increment": per_call_ns(args.calls, dict_floor),
        "floor: dict increment under a lock": per_call_ns(args.calls, locked_floor),
        "UsageCounter.count()": per_call_ns(args.calls, counted),
        "UsageCounter.count(), two threads": per_call_ns(args.calls, counted_by_two_threads),
    }
    for name, ns in figures.items():
        print(f"{name:40} {ns:7.0f} ns/call")
    with scratch_database(args.database_url) as url:
        database = create_database(url)
        tokens, deployments = seed(database)
        keys = len(tokens) * len(deployments)
        first = flush_seconds(database, tokens, deployments)
        again = [flush_seconds(database, tokens, deployments) for _ in range(3)]
        database.engine.dispose()
    backend = url.split(":", 1)[0]
    print(f"flush of {keys:,} keys ({backend}): new rows {first * 1000:.0f} ms, "
          f"onto existing rows {statistics.median(again) * 1000:.0f} ms (median of 3)")  # fmt: skip


if __name__ == "__main__":
    main()
