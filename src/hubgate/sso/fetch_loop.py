"""The fetcher of :mod:`hubgate.sso.fetch`, awaited on the event loop.

The OIDC callback waits on the provider three ways: the token exchange, the key
set when its cache misses, and userinfo when the id_token lacks claims. On the
event loop those waits hold no thread at all, and the answer costs no hop to a
network thread and back: complete OIDC sign-ins ran 13% and 22% faster than with
the exchange on a network thread (two runs of bench/oidc.py's sign-ins, old and new
servers taking turns, six rounds each).

The same rules as the threaded fetcher, which this shares its parsing and checks
with: http(s) only, no redirect, no proxy, the body bounded, the host resolved
once (an address literal is not resolved at all) and every address checked
(private, loopback and link-local ones refused unless allowed), the connection
made to those addresses only, TLS verified for the host in the URL. Connecting
has ``TIMEOUT`` seconds, and so has the whole answer after the request is sent.

The answer is parsed by httptools (llhttp, as uvicorn parses requests), with the
head bounded to :data:`MAX_HEAD_BYTES`. Connections are kept alive per event loop,
for exactly the host, port and checked addresses they were opened to, as the
threaded fetcher keeps its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httptools

from hubgate.errors import BadRequest
from hubgate.sso import fetch
from hubgate.sso.fetch import Target

__all__ = ["MAX_HEAD_BYTES", "close_kept", "get", "post_form", "resolve"]

MAX_HEAD_BYTES = 64 * 1024
"""The status line and headers of an answer, at most."""
_READ = 64 * 1024
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
_REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")


async def resolve(url: str, *, allow_private: bool) -> Target:
    """:func:`hubgate.sso.fetch.resolve`, resolving on the event loop."""
    scheme, host, port, path = fetch._parsed(url)
    addresses = await _addresses(host, port)
    if not allow_private:
        fetch._refuse_private(host, addresses)
    return Target(url, host, addresses, scheme, port, path)


async def get(url: str, *, allow_private: bool, headers: dict[str, str] | None = None) -> bytes:
    """A bounded GET (a key set, userinfo); a non-2xx answer fails with
    ``fetch_failed``."""
    target = await resolve(url, allow_private=allow_private)
    status, body = await _exchange("GET", target, headers or {}, None)
    if not 200 <= status < 300:
        raise BadRequest(
            f"Could not reach {target.url}: it answered {status}.", code="fetch_failed"
        )
    return body


async def post_form(
    url: str,
    form: dict[str, str],
    *,
    allow_private: bool,
    auth: tuple[str, str] | None = None,
    accept: str = "*/*",
) -> bytes:
    """A bounded form POST (token endpoints); the body is returned whatever the status."""
    target = await resolve(url, allow_private=allow_private)
    headers, body = fetch.form_post(form, accept, auth)
    return (await _exchange("POST", target, headers, body))[1]


async def _addresses(host: str, port: int) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        async with asyncio.timeout(fetch.TIMEOUT):
            answers = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise BadRequest(f"Cannot resolve {host}.", code="fetch_failed") from exc
    addresses = tuple(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise BadRequest(f"Cannot resolve {host}.", code="fetch_failed")
    return addresses


# -- one exchange -----------------------------------------------------------------------


async def _exchange(
    method: str, target: Target, headers: dict[str, str], body: bytes | None
) -> tuple[int, bytes]:
    """The request on a pinned connection (kept or new); the status and the body."""
    request = _request(method, target, headers, body)
    kept = _kept().take(target)
    try:
        connection = kept or await _connect(target)
    except (OSError, TimeoutError) as exc:
        raise BadRequest(f"Could not reach {target.url}: {exc}", code="fetch_failed") from exc
    try:
        connection.writer.write(request)
        async with asyncio.timeout(fetch.TIMEOUT):
            answer = await _answer(connection.reader, fetch.MAX_BYTES)
    except BadRequest:
        connection.close()
        raise
    except (
        OSError, TimeoutError, EOFError, httptools.HttpParserError, httptools.HttpParserUpgrade
    ) as exc:  # fmt: skip
        connection.close()
        raise BadRequest(f"Could not reach {target.url}: {exc!r}", code="fetch_failed") from exc
    except BaseException:  # cancelled mid-answer: the connection is in no state to keep
        connection.close()
        raise
    if answer.keep_alive:
        _kept().keep(target, connection)
    else:
        connection.close()
    return answer.status, bytes(answer.body)


def _request(method: str, target: Target, headers: dict[str, str], body: bytes | None) -> bytes:
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != (443 if target.scheme == "https" else 80):
        host = f"{host}:{target.port}"
    fields = {"Host": host, **fetch._HEADERS, **headers}
    if body is not None:
        fields["Content-Length"] = str(len(body))
    if not _REQUEST_TARGET.fullmatch(target.path):
        raise BadRequest("Refused a URL path that is not plain text.", code="url_invalid")
    for name, value in fields.items():
        if not _FIELD_VALUE.fullmatch(value):  # a provider's token must not add a header
            raise BadRequest(
                f"Refused a {name} header that is not plain text.", code="fetch_failed"
            )
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"{method} {target.path} HTTP/1.1\r\n{head}\r\n".encode("ascii") + (body or b"")


@dataclass(slots=True)
class _Answer:
    """What httptools' callbacks collect of one answer."""

    limit: int
    status: int = 0
    body: bytearray = field(default_factory=bytearray)
    framed: bool = False
    """Content-Length or chunked: the end is in the message, not the connection's close."""
    head_done: bool = False
    done: bool = False
    too_large: bool = False
    keep_alive: bool = False
    parser: Any = None

    def on_header(self, name: bytes, _value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, data: bytes) -> None:
        if len(self.body) + len(data) > self.limit:
            self.too_large = True
        else:
            self.body += data

    def on_message_complete(self) -> None:
        """The end; whether the connection may carry another exchange is known
        only now (httptools forgets it after the callback)."""
        self.done = True
        self.keep_alive = self.framed and self.parser.should_keep_alive()


async def _answer(reader: asyncio.StreamReader, limit: int) -> _Answer:
    answer = _Answer(limit)
    parser = answer.parser = httptools.HttpResponseParser(answer)
    head = 0
    while not answer.done:
        data = await reader.read(_READ)
        if not data:
            if answer.head_done and not answer.framed:
                break  # the body ends with the connection (RFC 9112 §6.3)
            raise EOFError("the connection closed before the answer ended")
        if not answer.head_done:
            head += len(data)
        parser.feed_data(data)
        if answer.too_large:
            raise BadRequest("The document is larger than allowed.", code="fetch_too_large")
        if not answer.head_done and head > MAX_HEAD_BYTES:
            raise BadRequest("The answer's headers are larger than allowed.", code="fetch_failed")
    answer.status = parser.get_status_code()
    return answer


# -- connections ------------------------------------------------------------------------


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        """Not idle too long, and not closed (or written to) by the server."""
        return (
            now - self.idle_since <= fetch.IDLE_SECONDS
            and not self.writer.is_closing()
            and not self.reader.at_eof()
            # nothing the server sent unasked (asyncio keeps what it read there)
            and not self.reader._buffer  # type: ignore[attr-defined]
        )

    def close(self) -> None:
        self.writer.close()


async def _connect(target: Target) -> _Connection:
    """A connection to the checked addresses, in order, and to nothing else."""
    tls = fetch._tls() if target.scheme == "https" else None
    refused: OSError | TimeoutError = ConnectionError(
        f"{target.host} has no address to connect to."
    )
    for address in target.addresses:
        try:
            async with asyncio.timeout(fetch.TIMEOUT):
                reader, writer = await asyncio.open_connection(
                    address, target.port, ssl=tls, server_hostname=target.host if tls else None,
                    limit=_READ,
                )  # fmt: skip
            return _Connection(reader, writer)
        except (OSError, TimeoutError) as exc:  # the next checked address
            refused = exc
    raise refused


_Key = tuple[str, str, int, tuple[str, ...]]


class _Kept:
    """One event loop's idle connections, by exactly the target they were opened to."""

    def __init__(self) -> None:
        self.idle: OrderedDict[_Key, list[_Connection]] = OrderedDict()

    def take(self, target: Target) -> _Connection | None:
        now = time.monotonic()
        idle = self.idle.get(_key(target))
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        return None

    def keep(self, target: Target, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        key = _key(target)
        idle = self.idle.pop(key, None) or []
        self.idle[key] = idle
        idle.append(connection)
        if len(idle) > fetch.KEPT_PER_HOST:
            idle.pop(0).close()
        while len(self.idle) > fetch.KEPT_HOSTS:
            for old in self.idle.popitem(last=False)[1]:
                old.close()


def _key(target: Target) -> _Key:
    return (target.scheme, target.host, target.port, target.addresses)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Kept] = weakref.WeakKeyDictionary()


def close_kept() -> None:
    """Close the running event loop's idle connections (a worker shutting down:
    :mod:`hubgate.app`'s lifespan), before the loop itself closes."""
    kept = _LOOPS.pop(asyncio.get_running_loop(), None)
    for idle in kept.idle.values() if kept else ():
        for connection in idle:
            connection.close()


def _kept() -> _Kept:
    loop = asyncio.get_running_loop()
    kept = _LOOPS.get(loop)
    if kept is None:
        kept = _LOOPS[loop] = _Kept()
    return kept
