"""The guard of tests/network_guard.py: an outbound call made while a transaction
is open, or on a request thread, fails; the same call outside them (on a network
thread) goes through."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import dns.resolver
import pytest
from anyio import to_thread

from hubgate.errors import BadRequest
from hubgate.runtime import Runtime
from hubgate.sso import domains, fetch
from hubgate.web.threads import on_network_thread, on_request_thread
from tests import network_guard


@pytest.fixture
def refused_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reached the real network stand-ins below the guard (nothing should)."""
    reached: list[str] = []

    def nowhere(*args: Any, **_: Any) -> Any:
        reached.append(str(args[0]))
        raise OSError("no network in unit tests")

    monkeypatch.setattr(fetch._NETWORK, "connect_tcp", nowhere)
    return reached


def test_the_fetcher_inside_a_transaction_fails(rt: Runtime, refused_network: list[str]) -> None:
    with pytest.raises(AssertionError, match="network call inside a transaction: getaddrinfo"):
        with rt.db.transaction():
            fetch.fetch("https://idp.example/metadata", allow_private=True)
    assert refused_network == []
    assert network_guard.violations
    network_guard.violations.clear()


def test_a_dns_lookup_inside_a_transaction_fails(rt: Runtime) -> None:
    with pytest.raises(AssertionError, match="network call inside a transaction: DNS TXT"):
        with rt.db.transaction() as db:
            db.connection()
            domains.dns_lookup(("192.0.2.1", 53))("_hubgate.acme.example")
    network_guard.violations.clear()


def test_an_http_request_inside_a_transaction_fails_even_to_a_literal_address(rt: Runtime) -> None:
    connection = fetch._PinnedConnection(
        fetch.Target("http://192.0.2.1/", "192.0.2.1", ("192.0.2.1",), "http", 80, "/")
    )
    with pytest.raises(AssertionError, match="network call inside a transaction: HTTP GET"):
        with rt.db.transaction():
            connection.request("GET", "/")
    network_guard.violations.clear()


def test_outside_a_transaction_the_call_goes_through(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with rt.db.transaction():
        pass
    asked: list[str] = []
    monkeypatch.setattr(
        dns.resolver.Resolver, "resolve", lambda self, name, *a, **k: asked.append(name) or []
    )
    assert domains.dns_lookup(("192.0.2.1", 53))("_hubgate.acme.example") == []
    assert asked == ["_hubgate.acme.example."]
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_a_refusal_the_code_swallows_is_still_recorded(rt: Runtime) -> None:
    """The fixture fails the test on what was recorded, whatever the code did with
    the AssertionError (an ``except Exception`` somewhere in between)."""
    with rt.db.transaction():
        try:
            network_guard.outbound("a call someone swallows")
        except AssertionError:
            pass
    assert network_guard.violations == [
        "network call inside a transaction: a call someone swallows"
    ]
    network_guard.violations.clear()


@pytest.mark.parametrize(
    "request_thread",
    [on_request_thread, to_thread.run_sync],
    ids=["hubgate's request thread", "anyio's, as FastAPI runs a def endpoint"],
)
def test_the_fetcher_on_a_request_thread_fails(
    refused_network: list[str], request_thread: Any
) -> None:
    def fetched() -> bytes:
        return fetch.fetch("https://idp.example/jwks", allow_private=True)

    with pytest.raises(AssertionError, match="network call on a request thread: getaddrinfo"):
        anyio.run(request_thread, fetched)
    assert refused_network == []
    network_guard.violations.clear()


def test_on_a_network_thread_the_call_goes_through(refused_network: list[str]) -> None:
    """The same fetch on a network thread reaches the (refused) network: the
    fetcher answers its own clear error, the guard none."""

    def fetched() -> bytes:
        return fetch.fetch("http://127.0.0.1:9/jwks", allow_private=True)

    with pytest.raises(BadRequest, match="Could not reach"):
        anyio.run(on_network_thread, fetched)
    assert refused_network == ["127.0.0.1"] and network_guard.violations == []


def test_a_blocking_fetch_on_the_event_loop_fails(refused_network: list[str]) -> None:
    """A plain fetch made from a coroutine would stall every request of the worker."""

    async def fetched() -> bytes:
        return fetch.fetch("https://idp.example/jwks", allow_private=True)

    with pytest.raises(AssertionError, match="network call blocking the event loop: getaddrinfo"):
        anyio.run(fetched)
    assert refused_network == []
    network_guard.violations.clear()


def test_a_double_for_the_event_loops_fetcher_is_awaited() -> None:
    async def fake() -> None:
        with network_guard.awaited():
            network_guard.outbound("fake fetch https://idp.example/jwks")

    anyio.run(fake)
    assert network_guard.violations == []
