"""A provider's slow answer is awaited on the event loop or on a network thread,
never on the worker's request thread (:mod:`hubgate.web.threads`): with one request
thread, as SQLite runs, another browser's sign-in starts while a callback waits on
the token endpoint, and an admin's DNS lookup does not hold it either."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dns.resolver
import httpx
import pytest
from fastapi.testclient import TestClient

from hubgate.config import Settings
from hubgate.runtime import Runtime
from hubgate.sso import domains
from hubgate.sso.flows import oidc as oidc_flow
from tests import network_guard
from tests.conftest import World, make_settings, sign_in
from tests.integration.test_oidc_flow import Provider, acme_connection, install

LIVENESS_SECONDS = 20
"""How long the other request may take before the test calls it stuck: it needs a
few milliseconds once a request thread is free, and none frees before the stall ends."""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, db_pool_size=1)  # one request thread per worker


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return install(monkeypatch)


class Stall:
    """Wraps a network call so that it waits, once entered, until :meth:`release`."""

    def __init__(self, call: Callable[..., bytes]) -> None:
        self.call = call
        self.entered, self.released = threading.Event(), threading.Event()

    def __call__(self, *args: Any, **options: Any) -> bytes:
        self.entered.set()
        if not self.released.wait(LIVENESS_SECONDS * 3):
            raise AssertionError("the stalled call was never released")
        return self.call(*args, **options)

    async def awaited(self, *args: Any, **options: Any) -> bytes:
        """The same stall for a call awaited on the event loop, which goes on
        serving other requests meanwhile."""
        self.entered.set()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.released.wait, LIVENESS_SECONDS * 3):
            raise AssertionError("the stalled call was never released")
        with network_guard.awaited():
            return self.call(*args, **options)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def stalled_token_endpoint(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stall]:
    stall = Stall(oidc_flow.post_form)  # the provider's, awaited on the event loop
    monkeypatch.setattr(oidc_flow, "post_form_on_loop", stall.awaited)
    yield stall
    stall.release()


def _in_background(call: Callable[[], httpx.Response]) -> tuple[threading.Event, list[Any]]:
    done, answers = threading.Event(), []

    def run() -> None:
        answers.append(call())
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, answers


def _start(client: TestClient) -> httpx.Response:
    return client.get("/sso/acme/start", params={"next": "/acme"}, follow_redirects=False)


def test_a_slow_token_endpoint_holds_no_request_thread(
    client: TestClient, rt: Runtime, world: World, provider: Provider,
    stalled_token_endpoint: Stall,
) -> None:  # fmt: skip
    assert rt.settings.request_threads == 1
    connection_id = acme_connection(world, rt)
    params = provider.authorize(_start(client).headers["location"])
    url, json_please = f"/sso/oidc/{connection_id}/callback", {"accept": "application/json"}
    callback_done, callback = _in_background(
        lambda: client.get(url, params=params, headers=json_please)
    )
    assert stalled_token_endpoint.entered.wait(LIVENESS_SECONDS)

    other_done, other = _in_background(lambda: _start(client))
    started_meanwhile = other_done.wait(LIVENESS_SECONDS)
    stalled_token_endpoint.release()
    assert started_meanwhile, "another browser's start waited for the stalled callback"
    assert other[0].status_code == 303

    assert callback_done.wait(LIVENESS_SECONDS)
    assert callback[0].status_code == 200 and callback[0].json()["next"] == "/acme"


def test_a_slow_dns_lookup_holds_no_request_thread(
    client: TestClient, rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.org("acme", world.user("admin@acme.test"))
    sign_in(client, "admin@acme.test")
    assert client.post("/api/v1/orgs/acme/domains", json={"domain": "acme.test"}).is_success

    def no_record(address: object, name: str) -> list[bytes]:
        raise dns.resolver.NXDOMAIN()

    stall = Stall(no_record)
    monkeypatch.setattr(domains, "_txt_records", stall)
    verify_done, verify = _in_background(
        lambda: client.post("/api/v1/orgs/acme/domains/acme.test/verify")
    )
    assert stall.entered.wait(LIVENESS_SECONDS)

    listed_done, listed = _in_background(lambda: client.get("/api/v1/orgs/acme/domains"))
    listed_meanwhile = listed_done.wait(LIVENESS_SECONDS)
    stall.release()
    assert listed_meanwhile, "the domain list waited for the stalled DNS lookup"
    assert listed[0].json()[0]["domain"] == "acme.test"

    assert verify_done.wait(LIVENESS_SECONDS)
    assert (verify[0].status_code, verify[0].json()["error"]) == (400, "domain_unverified")
