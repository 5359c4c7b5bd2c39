"""A lean load generator: pre-encoded HTTP/1.1 POSTs, one connection each.

httpx's AsyncClient spent up to half a core of this 2-core machine building and
parsing requests, taken from the server it measures. Here each request is
encoded before the clock starts, and a response is read only as far as its
status line, its ``Content-Length`` and its body.

Each request opens its own connection, as each sign-in comes from its own
browser. Keep-alive connections would also pin the load: uvicorn's workers
share one listening socket, and whichever accepts a connection serves all of
its requests (with 4 keep-alive connections one worker served them all while
the other sat idle). A fresh connection goes to whichever worker is free to
accept it. For loopback benchmarks of hubgate only: no TLS, no chunked bodies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

__all__ = ["encode", "form_posts", "run"]


def encode(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One request, encoded: ``url``'s path and query, ``headers``, then ``body``."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines += ["User-Agent: hubgate-bench", "Connection: close", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def form_posts(
    url: str, forms: Sequence[dict[str, str]], accept: str = "application/json"
) -> list[bytes]:
    """One encoded ``application/x-www-form-urlencoded`` POST per form."""
    headers = {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}
    return [encode("POST", url, urlencode(form).encode(), headers) for form in forms]


def run(
    url: str, requests: Sequence[bytes], concurrency: int, bodies: list[bytes] | None = None
) -> tuple[float, list[float], dict[int, int]]:
    """Send every request, ``concurrency`` connections at a time; (elapsed seconds,
    latencies, status counts). Response bodies go to ``bodies`` when it is given."""
    return asyncio.run(_run(url, requests, concurrency, bodies))


async def _run(
    url: str, requests: Sequence[bytes], concurrency: int, bodies: list[bytes] | None
) -> tuple[float, list[float], dict[int, int]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pending = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def browser() -> None:
        while pending:
            request = pending.pop()
            started = time.perf_counter()
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request)
                status, body = await _response(reader)
            finally:
                writer.close()
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if bodies is not None:
                bodies.append(body)

    started = time.perf_counter()
    await asyncio.gather(*(browser() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""
