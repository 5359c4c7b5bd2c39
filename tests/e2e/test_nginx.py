"""nginx ``auth_request`` in front of a model server, with deploy/nginx/hubgate.conf.

Real processes: hubgate under uvicorn, nginx, and an echo "model server" that
reports what reached it. The cases every proxy must pass are in
tests/e2e/forward_auth_contract.py; the ones below are nginx's own.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import EchoUpstream
from tests.e2e.forward_auth_contract import CONFUSING_PATHS, ForwardAuthContract, raw_get

pytestmark = pytest.mark.e2e


class TestNginx(ForwardAuthContract):
    @pytest.fixture
    def proxy_url(self, nginx_url: str) -> str:
        return nginx_url


def test_nginx_refuses_on_its_own(nginx_url: str, model_server: EchoUpstream) -> None:
    """The auth location is internal; dot segments and fragments, which could make
    the model server serve another resource than the one hubgate checked, are
    refused before hubgate is asked. Paths go out with http.client, which (unlike
    httpx) sends them exactly as written."""
    answers = {path: raw_get(nginx_url, path) for path in CONFUSING_PATHS}

    assert raw_get(nginx_url, "/_hubgate_auth") == (404, None)
    assert answers == dict.fromkeys(CONFUSING_PATHS, (400, None))
    assert model_server.requests == []
