"""The ceiling any endpoint meets on this machine: ``GET /healthz`` (one database
ping, a small JSON answer) per second against a running hubgate (2 uvicorn
workers), sent by the same load generator as the other benchmarks (_load.py: one
connection per request). A target above this figure is out of reach here for
any route, whatever it does. Prints figures; asserts nothing.

    .venv/bin/python bench/floor.py [--requests 6000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _load as load  # noqa: E402
from _server import scratch_database, serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with scratch_database(None) as url, serve(url, workers=2) as base:
        target = f"{base}/healthz"
        request = load.encode("GET", target)
        load.run(target, [request] * 200, args.concurrency)  # warm-up
        elapsed, latencies, statuses = load.run(target, [request] * args.requests, args.concurrency)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"GET /healthz: {len(latencies) / elapsed:,.0f} requests/s  p50 {p50:.1f} ms"
        f"  p99 {p99:.1f} ms  statuses {statuses}  (2 workers, {args.concurrency} in flight)"
    )


if __name__ == "__main__":
    main()
