"""The fetcher of IdP documents (hubgate.sso.fetch): it connects to the addresses it
checked and to nothing else (DNS rebinding), TLS still names the URL's host, it
keeps its bounds, and it keeps a connection only for the addresses it was pinned
to. The network is a fake that records what it was asked to connect to, the
resolver a fake that answers differently on each call."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from hubgate.errors import BadRequest
from hubgate.sso import fetch

PUBLIC, OTHER_PUBLIC, PRIVATE = "93.184.216.34", "151.101.1.69", "127.0.0.1"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
KEPT = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


class FakeNetwork:
    """Records every address a connection was opened to (``refusing`` ones fail)
    and the host each TLS session named; the other end of each connection is a
    local socket that has the response ready and keeps what was sent."""

    def __init__(self, response: bytes = OK, refusing: Iterable[str] = ()) -> None:
        self.response, self.refusing = response, set(refusing)
        self.connected: list[tuple[str, int]] = []
        self.tls_hostnames: list[str | None] = []
        self.peers: list[socket.socket] = []
        self.opened: list[socket.socket] = []
        self.certificate_refused = False

    def connect_tcp(self, address: str, port: int, timeout: float) -> socket.socket:
        self.connected.append((address, port))
        if address in self.refusing:
            raise ConnectionRefusedError("connection refused")
        ours, theirs = socket.socketpair()
        theirs.sendall(self.response)
        self.peers.append(theirs)
        ours.settimeout(timeout)
        self.opened.append(ours)
        return ours

    def start_tls(
        self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str
    ) -> socket.socket:
        self.tls_hostnames.append(server_hostname)
        if self.certificate_refused:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        return sock

    @property
    def sent(self) -> bytes:
        received = b""
        for peer in self.peers:
            peer.setblocking(False)
            try:
                while chunk := peer.recv(65536):
                    received += chunk
            except (BlockingIOError, ConnectionResetError):  # all read; or closed unread
                pass
        return received

    def close(self) -> None:
        for peer in self.peers:
            peer.close()


class Rebinding:
    """A resolver that answers ``first`` to the first question and ``then`` after."""

    def __init__(self, first: list[str], then: list[str]) -> None:
        self.first, self.then, self.asked = first, then, 0

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.asked += 1
        answers = self.first if self.asked == 1 else self.then
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNetwork]:
    fake = FakeNetwork()
    monkeypatch.setattr(fetch, "_NETWORK", fake)
    kept = type(fetch._kept)()
    monkeypatch.setattr(fetch, "_kept", kept)
    yield fake
    for idle in kept.values():
        for connection in idle.connections:
            connection.close()
    fake.close()


def test_a_rebinding_resolver_never_gets_hubgate_to_connect_to_the_private_address(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check sees a public address; any later question would get loopback.
    The connection goes to the checked address, the TLS and Host names stay the URL's."""
    resolver = Rebinding([PUBLIC], [PRIVATE])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    for _ in range(2):
        resolver.asked = 0
        assert fetch.fetch("https://idp.example/jwks", allow_private=False) == b"{}"
        assert resolver.asked == 1, "resolved once, for the check"
    assert network.connected == [(PUBLIC, 443), (PUBLIC, 443)]
    assert network.tls_hostnames == ["idp.example", "idp.example"]
    assert b"\r\nHost: idp.example\r\n" in network.sent


def test_one_private_answer_among_public_ones_refuses_the_url_before_any_connection(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC, PRIVATE], [PUBLIC]))
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://idp.example/metadata", allow_private=False)
    assert refused.value.code == "url_private"
    assert network.connected == []


@pytest.mark.parametrize("address", ["10.0.0.8", "169.254.169.254", "::1", "fe80::1", "0.0.0.0"])
def test_private_loopback_and_link_local_addresses_are_refused(
    network: FakeNetwork, address: str
) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(BadRequest) as refused:
        fetch.fetch(f"http://{host}/", allow_private=False)
    assert refused.value.code == "url_private"
    assert network.connected == []


def test_when_a_checked_address_refuses_the_next_checked_one_is_tried(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC, OTHER_PUBLIC], [PRIVATE]))
    network.refusing = {PUBLIC}
    assert fetch.fetch("http://idp.example:8080/", allow_private=False) == b"{}"
    assert network.connected == [(PUBLIC, 8080), (OTHER_PUBLIC, 8080)]


def test_allowed_private_addresses_are_pinned_too(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PRIVATE], ["10.9.9.9"]))
    assert fetch.fetch("http://idp.test/", allow_private=True) == b"{}"
    assert network.connected == [(PRIVATE, 80)]


def test_a_redirect_is_not_followed(network: FakeNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.response = (
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1/\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://idp.example/", allow_private=False)
    assert refused.value.code == "fetch_failed"
    assert network.connected == [(PUBLIC, 443)]


def test_a_document_over_the_limit_is_refused(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.response = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n" + b"x" * 11
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://idp.example/", allow_private=False, limit=10)
    assert refused.value.code == "fetch_too_large"


def test_a_conditional_read_sends_the_validators_and_a_304_is_not_modified(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.response = b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
    modified = "Sun, 06 Dec 2026 10:00:00 GMT"
    found = fetch.fetch_if_changed(
        "https://idp.example/md", allow_private=False, etag='"v1"', last_modified=modified
    )
    sent = network.sent
    assert found is None
    assert b'If-None-Match: "v1"\r\n' in sent
    assert f"If-Modified-Since: {modified}\r\n".encode() in sent


@pytest.mark.parametrize(
    ("etag", "kept"),
    [('"v2"', '"v2"'), ('"v2"\x7f', None), ('"' + "x" * 300 + '"', None)],
    ids=["kept", "control-character", "too-long"],
)
def test_a_changed_document_comes_with_its_validators_unless_they_are_unsafe(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch, etag: str, kept: str | None
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.response = (
        f"HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    ).encode("latin-1")
    found = fetch.fetch_if_changed(
        "https://idp.example/md", allow_private=False, etag=None, last_modified=None
    )
    assert found == fetch.Fetched(b"{}", kept, None)
    assert b"If-None-Match" not in network.sent


def test_a_304_to_an_unconditional_fetch_is_a_failure(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.response = b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://idp.example/", allow_private=False)
    assert refused.value.code == "fetch_failed"


@pytest.mark.parametrize(
    "url", ["ftp://idp.example/", "idp.example", "https:///path", "file:///etc/passwd"]
)
def test_only_http_urls_with_a_host(network: FakeNetwork, url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        fetch.fetch(url, allow_private=True)
    assert refused.value.code == "url_invalid"
    assert network.connected == []


def test_an_unresolvable_host_fails_to_fetch(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nothing(*_: Any, **__: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nothing)
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://nowhere.example/", allow_private=False)
    assert refused.value.code == "fetch_failed"


class LoopbackServer:
    """A real HTTP/1.1 server on loopback that answers every request with ``{}``
    and keeps the connection, or closes it after one answer without saying so (as
    a server whose idle timeout ran out does); it counts the connections it took
    and keeps every request it read."""

    def __init__(self, *, close_after_answer: bool = False) -> None:
        self.close_after_answer = close_after_answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            while request := self._request(stream):
                self.requests.append(request)
                conn.sendall(KEPT)
                if self.close_after_answer:
                    return

    @staticmethod
    def _request(stream: Any) -> bytes:
        head = b""
        while (line := stream.readline()) not in (b"\r\n", b""):
            head += line
        if not head:
            return b""
        length = [int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                  if k.lower() == b"content-length"]  # fmt: skip
        return head + b"\r\n" + (stream.read(length[0]) if length else b"")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.fixture
def fresh_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty pool of kept connections, whose connections are closed after."""
    kept = type(fetch._kept)()
    monkeypatch.setattr(fetch, "_kept", kept)
    yield
    for idle in kept.values():
        for connection in idle.connections:
            connection.close()


def test_a_connection_is_kept_for_the_next_request_to_the_same_checked_addresses(
    loopback: LoopbackServer, fresh_pool: None
) -> None:
    url = f"http://127.0.0.1:{loopback.port}/jwks"
    for _ in range(3):
        assert fetch.fetch(url, allow_private=True) == b"{}"
    assert loopback.connections == 1
    assert len(loopback.requests) == 3


def test_a_kept_connection_the_server_closed_is_not_used_again(fresh_pool: None) -> None:
    """The server closes each connection after one answer, without a ``Connection:
    close``: the next request sees that and connects again, and gets its answer."""
    server = LoopbackServer(close_after_answer=True)
    try:
        url = f"http://127.0.0.1:{server.port}/jwks"
        assert fetch.fetch(url, allow_private=True) == b"{}"
        deadline = time.monotonic() + 5
        while not _kept_one_closed() and time.monotonic() < deadline:
            time.sleep(0.01)  # until the server's close reached this side
        assert fetch.fetch(url, allow_private=True) == b"{}"
        assert server.connections == 2
    finally:
        server.close()


def _kept_one_closed() -> bool:
    idle = next(iter(fetch._kept.values())).connections
    return bool(idle) and not idle[0].usable(time.monotonic())


def test_an_idle_connection_is_not_kept_past_its_expiry(
    loopback: LoopbackServer, fresh_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{loopback.port}/jwks"
    fetch.fetch(url, allow_private=True)
    monkeypatch.setattr(fetch, "IDLE_SECONDS", -1.0)
    fetch.fetch(url, allow_private=True)
    assert loopback.connections == 2


def test_the_token_request_is_a_form_post_with_basic_credentials(
    loopback: LoopbackServer, fresh_pool: None
) -> None:
    url = f"http://127.0.0.1:{loopback.port}/token"
    answer = fetch.post_form(
        url, {"grant_type": "authorization_code", "code": "a b&c"}, allow_private=True,
        auth=("client%3A1", "s3cret"),
    )  # fmt: skip
    assert answer == b"{}"
    (request,) = loopback.requests
    head, _, body = request.partition(b"\r\n\r\n")
    head += b"\r\n"
    assert head.startswith(b"POST /token HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{loopback.port}\r\n".encode() in head
    assert b"\r\nContent-Type: application/x-www-form-urlencoded\r\n" in head
    assert b"\r\nAuthorization: Basic Y2xpZW50JTNBMTpzM2NyZXQ=\r\n" in head
    assert body == b"grant_type=authorization_code&code=a+b%26c"


def test_an_error_answer_of_a_document_fetch_fails_but_a_token_endpoint_s_is_read(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.response = b'HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\n{"e": 1}\n'
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://idp.example/jwks", allow_private=False)
    assert refused.value.code == "fetch_failed"
    answer = fetch.post_form("https://idp.example/token", {}, allow_private=False)
    assert answer == b'{"e": 1}\n'


def test_a_certificate_the_tls_check_refuses_fails_the_fetch_and_closes_the_socket(
    network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding([PUBLIC], [PUBLIC]))
    network.certificate_refused = True
    with pytest.raises(BadRequest) as refused:
        fetch.fetch("https://idp.example/jwks", allow_private=False)
    assert refused.value.code == "fetch_failed"
    assert network.tls_hostnames == ["idp.example"]
    assert [sock.fileno() for sock in network.opened] == [-1]
    assert network.sent == b"", "nothing was sent before the certificate was checked"
