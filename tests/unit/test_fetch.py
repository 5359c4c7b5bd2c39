"""The fetcher of IdP documents (hubgate.sso.fetch): it connects to the addresses it
checked and to nothing else (DNS rebinding), TLS still names the URL's host, and
it keeps its bounds. The network is a fake backend that records what it was asked
to connect to, the resolver a fake that answers differently on each call."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import pytest

from hubgate.errors import BadRequest
from hubgate.sso import fetch

PUBLIC, OTHER_PUBLIC, PRIVATE = "93.184.216.34", "151.101.1.69", "127.0.0.1"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


class FakeStream(httpcore.NetworkStream):
    def __init__(self, network: FakeNetwork, response: bytes) -> None:
        self.network, self.response = network, response

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        chunk, self.response = self.response[:max_bytes], self.response[max_bytes:]
        return chunk

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.network.sent += buffer

    def close(self) -> None:
        pass

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.network.tls_hostnames.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


class FakeNetwork(httpcore.NetworkBackend):
    """Records every address a connection was opened to; ``refusing`` ones fail."""

    def __init__(self, response: bytes = OK, refusing: Iterable[str] = ()) -> None:
        self.response, self.refusing = response, set(refusing)
        self.connected: list[tuple[str, int]] = []
        self.tls_hostnames: list[str | None] = []
        self.sent = b""

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, *_: Any, **__: Any
    ) -> httpcore.NetworkStream:
        self.connected.append((host, port))
        if host in self.refusing:
            raise httpcore.ConnectError("connection refused")
        return FakeStream(self, self.response)


class Rebinding:
    """A resolver that answers ``first`` to the first question and ``then`` after."""

    def __init__(self, first: list[str], then: list[str]) -> None:
        self.first, self.then, self.asked = first, then, 0

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.asked += 1
        answers = self.first if self.asked == 1 else self.then
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    fake = FakeNetwork()
    monkeypatch.setattr(fetch, "_NETWORK", fake)
    return fake


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
