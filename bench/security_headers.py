"""What the security headers middleware (hubgate.web.security_headers) costs a
request: the same ASGI response sent through it and without it, in process, on
one core. ``GET /auth/check`` (forward-auth, asked before every request of a
model server) is the path that matters; a page, a page whose ``next`` is looked
at, and a secret page are shown beside it. Prints figures; asserts nothing.

    .venv/bin/python bench/security_headers.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.web.security_headers import SecurityHeaders

CASES = (
    ("/auth/check", b""),
    ("/acme/models/llama", b""),
    ("/login", b"next=%2Facme%2Fmodels%2Fllama"),
    ("/setup/k3y", b""),
)


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """A response shaped like forward-auth's: a status, a few headers, an empty body."""
    await send({
        "type": "http.response.start", "status": 200,
        "headers": [(b"content-length", b"0"), (b"x-hubgate-user", b"7"),
                    (b"x-hubgate-org", b"acme"), (b"x-trace-id", b"0123456789abcdef")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": b""})


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Message) -> None:
    return None


async def per_request(app: ASGIApp, path: str, query: bytes, requests: int) -> float:
    """Nanoseconds per request of ``app`` (best of three runs)."""
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter_ns()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        best = min(best, (time.perf_counter_ns() - started) / requests)
    return best


async def main(requests: int) -> None:
    wrapped = SecurityHeaders(answer)
    print(f"security headers middleware, {requests:,} in-process requests per run, best of 3:")
    for path, query in CASES:
        bare = await per_request(answer, path, query, requests)
        with_headers = await per_request(wrapped, path, query, requests)
        shown = path + (f"?{query.decode()}" if query else "")
        print(
            f"  {shown:40} {bare:7.0f} ns bare  {with_headers:7.0f} ns with headers"
            f"  (+{with_headers - bare:.0f} ns)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().requests))
