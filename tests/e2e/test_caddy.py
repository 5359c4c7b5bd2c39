"""Caddy ``forward_auth`` in front of a model server, with deploy/caddy/Caddyfile.

Real processes: hubgate under uvicorn, Debian's Caddy, and an echo "model
server" that reports what reached it. The cases every proxy must pass are in
tests/e2e/forward_auth_contract.py; the ones below are Caddy's own.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import HOST, EchoUpstream, running_caddy
from tests.e2e.forward_auth_contract import CONFUSING_PATHS, ForwardAuthContract, raw_get
from tests.ports import free_port

pytestmark = pytest.mark.e2e


class TestCaddy(ForwardAuthContract):
    @pytest.fixture
    def proxy_url(self, caddy_url: str) -> str:
        return caddy_url


def test_confusing_paths_are_refused_by_hubgate(caddy_url: str, model_server: EchoUpstream) -> None:
    """Caddy, unlike the nginx configuration, has no rule of its own against dot
    segments or a raw ``#``: it asks hubgate about the URI as the model server
    would get it (``#`` re-encoded as ``%23``), and hubgate refuses it."""
    answers = {path: raw_get(caddy_url, path) for path in CONFUSING_PATHS}

    assert answers == dict.fromkeys(CONFUSING_PATHS, (403, "route_unmapped")) | {
        "/acme/models/open#x": (401, "not_found"),  # no model is named "open#x"
    }
    assert model_server.requests == []


def test_unreachable_hubgate_fails_closed(caddy: str, model_server: EchoUpstream) -> None:
    nowhere = f"http://{HOST}:{free_port()}"

    with running_caddy(caddy, hubgate_url=nowhere, upstream=model_server.address) as url:
        response = httpx.get(f"{url}/acme/models/open", timeout=10.0)

    assert response.status_code == 502
    assert model_server.requests == []
