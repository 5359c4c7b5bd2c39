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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

__all__ = ["Answer", "KeptConnection", "encode", "exchange", "form_posts", "run", "run_loop"]


def encode(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    keep_alive: bool = False,
) -> bytes:
    """One request, encoded: ``url``'s path and query, ``headers``, then ``body``;
    ``Connection: close`` unless ``keep_alive``."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    connection = "keep-alive" if keep_alive else "close"
    lines += [
        "User-Agent: hubgate-bench",
        f"Connection: {connection}",
        f"Content-Length: {len(body)}",
    ]
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
    return run_loop(_run(url, requests, concurrency, bodies))


_T = TypeVar("_T")


def run_loop(main: Coroutine[Any, Any, _T]) -> _T:
    """``main`` on uvloop (uvicorn's own loop, installed with it), which spends about
    half the CPU of asyncio's default loop per connection; asyncio's when absent."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


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


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: its status, its headers (names lowercased) and its body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


async def exchange(host: str, port: int, request: bytes) -> Answer:
    """One encoded request on a connection of its own (see :func:`encode`)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        return await _answer(reader)
    finally:
        writer.close()


class KeptConnection:
    """One keep-alive connection, opened on first use and reopened when the server
    closed it (for a browser's requests to one server: an IdP's single process)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> Answer:
        if self._streams is None or self._streams[0].at_eof():
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(request)
        answer = await _answer(reader)
        if (answer.header("connection") or "").lower() == "close":
            self.close()
        return answer

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    answer = await _answer(reader)
    return answer.status, answer.body


async def _answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers.append((name.strip().lower(), value.strip()))
    length = int(next((v for k, v in headers if k == "content-length"), "0"))
    return Answer(status, headers, await reader.readexactly(length) if length else b"")
