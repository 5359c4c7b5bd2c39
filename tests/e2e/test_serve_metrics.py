"""``/metrics`` under ``hubgate serve --workers 2`` adds every worker up: a known
number of sign-ins, refusals and forward-auth checks, spread over the workers by
the kernel, reads back exactly from every scrape, whichever worker answers it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import HOST, _healthy, _hubgate_env, _process, _wait_until
from tests.e2e.test_serve import HUBGATE, serving
from tests.ports import free_port

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
        bounded = (("connection", ""), ("method", "password"), ("reason", "invalid_credentials"))
        assert samples[("hubgate_sign_in_refusals_total", bounded)] == REFUSALS


def test_a_named_directory_is_emptied_at_start_and_workers_retire_their_gauges(
    database: str, tmp_path: Path
) -> None:
    """HUBGATE_METRICS_DIR: a stale (here unreadable) file of an earlier run is gone
    before the workers start; a worker stopped cleanly leaves no live gauge file."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"not a metrics file")
    port = free_port()
    env = _hubgate_env(database, f"http://{HOST}:{port}", {"HUBGATE_METRICS_DIR": str(folder)})
    command = [HUBGATE, "serve", "--host", HOST, "--port", str(port), "--workers", "2"]
    log = tmp_path / "hubgate.log"
    with _process(command, log, env=env, cwd=str(tmp_path)) as process:
        _wait_until(lambda: _healthy(f"http://{HOST}:{port}"), process, "hubgate", log)
        assert "hubgate_http_requests_total" in httpx.get(f"http://{HOST}:{port}/metrics").text
        assert not (folder / "counter_1.db").exists()
        assert list(folder.glob("gauge_livesum_*.db"))
    assert list(folder.glob("counter_*.db")), "what the workers counted stays"
    assert not list(folder.glob("gauge_livesum_*.db"))
