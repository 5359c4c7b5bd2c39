"""``/metrics`` under ``hubgate serve --workers 2`` adds every worker up: a known
number of sign-ins, refusals and forward-auth checks, spread over the workers by
the kernel, reads back exactly from every scrape, whichever worker answers it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import HOST, _hubgate_env
from tests.e2e.test_serve import HUBGATE, serving

pytestmark = [pytest.mark.e2e]

EMAIL, PASSWORD = "ada@example.com", "a long enough password"
SIGN_INS, REFUSALS, CHECKS = 7, 4, 9  # refusals stay under the throttle's 10


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    from hubgate.db.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'hubgate.db'}"
    upgrade(url)
    env = _hubgate_env(url, f"http://{HOST}", {})
    command = [HUBGATE, "user", "create", EMAIL, "--password-stdin"]
    subprocess.run(command, input=PASSWORD.encode(), env=env, check=True, capture_output=True)
    return url


@pytest.fixture(scope="module")
def base_url(database: str) -> Iterator[str]:
    with serving(database, "--workers", "2") as port:
        yield f"http://{HOST}:{port}"


def _sign_in(base_url: str, password: str) -> int:
    """On a connection of its own, so the kernel may hand it to either worker."""
    body = {"email": EMAIL, "password": password}
    return httpx.post(f"{base_url}/api/v1/login", json=body, timeout=30).status_code


def _samples(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _forward_auth_total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "hubgate_access_decisions_total" and ("where", "forward_auth") in labels
    )


def test_every_scrape_adds_up_every_worker(base_url: str) -> None:
    assert [_sign_in(base_url, PASSWORD) for _ in range(SIGN_INS)] == [200] * SIGN_INS
    assert [_sign_in(base_url, "wrong password!") for _ in range(REFUSALS)] == [401] * REFUSALS
    for _ in range(CHECKS):
        headers = {"x-original-uri": "/acme/models/closed", "x-original-method": "GET"}
        assert httpx.get(f"{base_url}/auth/check", headers=headers, timeout=30).status_code in {
            401,
            403,
            404,
        }
    for _scrape in range(6):
        samples = _samples(base_url)
        sign_ins = "hubgate_sign_ins_total"
        assert samples[(sign_ins, (("method", "password"), ("outcome", "success")))] == SIGN_INS
        refused = (("method", "password"), ("outcome", "invalid_credentials"))
        assert samples[(sign_ins, refused)] == REFUSALS
        assert _forward_auth_total(samples) == CHECKS
