"""The event loop's fetcher (hubgate.sso.fetch_loop) keeps the threaded fetcher's
rules: it connects to the addresses it checked and to nothing else, refuses private
ones unless allowed, keeps its bounds (head, body, time), sends no header a
provider's value could split, reads a token endpoint's error answers but fails a
document's, and keeps a connection only when the answer left it clean. The server
is a real one on loopback, answering what each test scripts."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hubgate.errors import BadRequest
from hubgate.sso import fetch, fetch_loop
from tests.integration.smtp_server import self_signed

Answer = Callable[[bytes], bytes | None]
"""From the request received, the bytes to answer (``None``: answer nothing)."""


def ok(body: bytes = b"{}", *extra: str) -> Answer:
    head = "".join(f"{line}\r\n" for line in extra)
    return lambda _: f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


class Server:
    """A loopback HTTP server: each connection's requests, answered in turn."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answer(request)
                if answer is None:
                    await asyncio.sleep(3600)
                writer.write(answer or b"")
                await writer.drain()
                if b"connection: close" in (answer or b"").lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run(
    server: Server, call: Callable[[str], Awaitable[Any]], tls: ssl.SSLContext | None = None
) -> Any:
    """``call(base_url)`` on a fresh event loop, ``server`` listening meanwhile
    (over TLS with ``tls``)."""

    async def main() -> Any:
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
        server.port = listening.sockets[0].getsockname()[1]
        async with listening:
            try:
                return await call(f"{'https' if tls else 'http'}://127.0.0.1:{server.port}")
            finally:
                fetch_loop.close_kept()

    return asyncio.run(main())


def test_a_form_post_carries_basic_credentials_and_an_error_answer_is_read() -> None:
    server = Server(
        lambda _: b'HTTP/1.1 400 Bad Request\r\nContent-Length: 25\r\n\r\n{"error":"invalid_grant"}'
    )

    async def call(base: str) -> bytes:
        return await fetch_loop.post_form(
            f"{base}/token", {"code": "c 1"}, allow_private=True, auth=("client", "s3cret")
        )

    assert run(server, call) == b'{"error":"invalid_grant"}'
    head, body = server.requests[0].split(b"\r\n\r\n")
    assert head.startswith(b"POST /token HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Basic Y2xpZW50OnMzY3JldA==" in head
    assert b"\r\nContent-Type: application/x-www-form-urlencoded" in head
    assert f"\r\nHost: 127.0.0.1:{server.port}".encode() in head
    assert body == b"code=c+1"


def test_a_document_answered_with_an_error_fails() -> None:
    server = Server(lambda _: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(BadRequest, match="answered 404") as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True))
    assert refused.value.code == "fetch_failed"


def test_private_addresses_are_refused_before_any_connection() -> None:
    server = Server(ok())
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(BadRequest) as refused:
            run(server, lambda base, h=host: fetch_loop.get(  # type: ignore[misc]
                base.replace("127.0.0.1", h) + "/jwks", allow_private=False))  # fmt: skip
        assert refused.value.code == "url_private"
    assert server.connections == 0


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The event loop's resolver answers idp.example with a public address and a
    private one; the connections made are recorded (and go to the test server)."""
    connected: list[str] = []
    real_open = asyncio.open_connection

    async def getaddrinfo(self: Any, host: str, port: int, **_: Any) -> list[Any]:
        assert host == "idp.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in ("93.184.216.34", "127.0.0.1")
        ]

    async def open_connection(address: str, port: int, **options: Any) -> Any:
        connected.append(address)
        return await real_open("127.0.0.1", port, **options)

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(fetch_loop.asyncio, "open_connection", open_connection)
    yield connected


def test_one_private_answer_refuses_the_host(resolver: list[str]) -> None:
    server = Server(ok())
    with pytest.raises(BadRequest) as refused:
        run(server, lambda base: fetch_loop.get(
            f"http://idp.example:{server.port}/jwks", allow_private=False))  # fmt: skip
    assert refused.value.code == "url_private" and resolver == []


def test_the_connection_goes_to_the_checked_addresses_in_order(resolver: list[str]) -> None:
    server = Server(ok(b'{"keys":[]}'))
    answer = run(server, lambda base: fetch_loop.get(
        f"http://idp.example:{server.port}/jwks", allow_private=True))  # fmt: skip
    assert answer == b'{"keys":[]}' and resolver == ["93.184.216.34"]
    assert f"\r\nHost: idp.example:{server.port}\r\n".encode() in server.requests[0]


def test_a_body_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "MAX_BYTES", 100)
    server = Server(ok(b"x" * 101))
    with pytest.raises(BadRequest) as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True))
    assert refused.value.code == "fetch_too_large"


def test_a_chunked_body_over_the_limit_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "MAX_BYTES", 100)
    chunks = b"".join(b"40\r\n" + b"y" * 64 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
    server = Server(lambda _: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    with pytest.raises(BadRequest) as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True))
    assert refused.value.code == "fetch_too_large"


def test_a_chunked_body_is_read_whole() -> None:
    chunks = b'3\r\n{"a\r\n5\r\n":1}\n\r\n0\r\n\r\n'
    server = Server(lambda _: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert run(server, lambda base: fetch_loop.get(f"{base}/u", allow_private=True)) == b'{"a":1}\n'


def test_an_endless_head_is_refused() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * (fetch_loop.MAX_HEAD_BYTES + 10)
    server = Server(lambda _: head)
    with pytest.raises(BadRequest, match="headers are larger") as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True))
    assert refused.value.code == "fetch_failed"


def test_an_answer_that_never_comes_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "TIMEOUT", 0.05)
    server = Server(lambda _: None)
    with pytest.raises(BadRequest) as refused:
        run(server, lambda base: fetch_loop.post_form(f"{base}/token", {}, allow_private=True))
    assert refused.value.code == "fetch_failed"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["upgrade", "not http", "two lengths", "bad chunk"],
)
def test_an_answer_that_is_not_plain_http_fails_cleanly(answer: bytes) -> None:
    server = Server(lambda _: answer)
    with pytest.raises(BadRequest) as refused:
        run(server, lambda base: fetch_loop.post_form(f"{base}/token", {}, allow_private=True))
    assert refused.value.code == "fetch_failed"


def test_a_body_cut_short_fails() -> None:
    server = Server(
        lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}"
    )
    with pytest.raises(BadRequest) as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True))
    assert refused.value.code == "fetch_failed"


def test_a_body_the_close_ends_is_read_and_the_connection_not_kept() -> None:
    server = Server(lambda _: b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"sub":"1"}')

    async def twice(base: str) -> list[bytes]:
        return [await fetch_loop.get(f"{base}/u", allow_private=True) for _ in range(2)]

    assert run(server, twice) == [b'{"sub":"1"}'] * 2
    assert server.connections == 2


def test_closing_the_kept_connections_closes_them_at_the_server() -> None:
    server = Server(ok(b"{}"))

    async def kept_then_closed(base: str) -> tuple[int, int]:
        await fetch_loop.get(f"{base}/jwks", allow_private=True)
        fetch_loop.close_kept()
        await fetch_loop.get(f"{base}/jwks", allow_private=True)
        return server.connections, len(server.requests)

    assert run(server, kept_then_closed) == (2, 2)


def test_a_connection_is_kept_for_the_next_request_to_the_same_target() -> None:
    server = Server(ok(b"{}"))

    async def three(base: str) -> list[bytes]:
        return [
            await fetch_loop.post_form(f"{base}/token", {}, allow_private=True) for _ in range(3)
        ]

    assert run(server, three) == [b"{}"] * 3
    assert server.connections == 1 and len(server.requests) == 3


def test_a_kept_connection_the_server_closed_is_not_used_again() -> None:
    server = Server(ok(b"{}", "Connection: close"))

    async def twice(base: str) -> list[bytes]:
        first = await fetch_loop.get(f"{base}/jwks", allow_private=True)
        await asyncio.sleep(0.01)  # the server's close reaches the idle connection
        return [first, await fetch_loop.get(f"{base}/jwks", allow_private=True)]

    assert run(server, twice) == [b"{}", b"{}"]
    assert server.connections == 2


def test_a_provider_value_that_would_split_the_request_is_not_sent() -> None:
    """An access token is the provider's: CR LF in it must not start a header."""
    server = Server(ok())
    bearer = {"Authorization": "Bearer at\r\nX-Injected: 1"}
    with pytest.raises(BadRequest, match="not plain text") as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/u", allow_private=True, headers=bearer))
    assert refused.value.code == "fetch_failed" and server.requests == []


@pytest.mark.parametrize("url", ["ftp://idp.example/jwks", "http:///jwks", "not a url"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        asyncio.run(fetch_loop.get(url, allow_private=True))
    assert refused.value.code == "url_invalid"


def test_tls_verifies_the_servers_certificate(tmp_path: Path) -> None:
    certificate = self_signed(tmp_path)
    server = Server(ok())
    with pytest.raises(BadRequest, match="CERTIFICATE_VERIFY_FAILED") as refused:
        run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True),
            tls=certificate.server_context())  # fmt: skip
    assert refused.value.code == "fetch_failed" and server.requests == []


def test_over_tls_to_a_trusted_certificate_the_answer_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = self_signed(tmp_path)
    monkeypatch.setattr(fetch, "_tls", certificate.client_context)
    server = Server(ok(b'{"keys":[]}'))
    answer = run(server, lambda base: fetch_loop.get(f"{base}/jwks", allow_private=True),
                 tls=certificate.server_context())  # fmt: skip
    assert answer == b'{"keys":[]}' and len(server.requests) == 1
