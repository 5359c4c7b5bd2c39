"""Operations endpoints: health, metrics and the trace id on every answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hubgate.app import create_app
from hubgate.runtime import Runtime, build_runtime
from tests.conftest import World, make_settings, sign_in


def test_healthz_reports_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": True}


def test_healthz_is_503_when_the_database_is_unreachable() -> None:
    runtime = build_runtime(make_settings("sqlite:////nonexistent-dir/hubgate.db"))
    with TestClient(create_app(runtime=runtime)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["database"] is False


def test_metrics_count_requests_sign_ins_and_decisions(
    client: TestClient, world: World, rt: Runtime
) -> None:
    world.user("m@example.com")
    sign_in(client, "m@example.com")
    client.post("/api/v1/login", json={"email": "m@example.com", "password": "not the password"})
    client.get("/api/v1/orgs/nothing/members")
    text = client.get("/metrics").text
    assert 'hubgate_http_requests_total{method="POST",route="/api/v1/login",status="200"}' in text
    assert 'hubgate_sign_ins_total{method="password",outcome="success"}' in text
    assert 'hubgate_sign_ins_total{method="password",outcome="invalid_credentials"}' in text
    assert "hubgate_http_request_duration_seconds_bucket" in text


def test_every_answer_has_a_trace_id(client: TestClient) -> None:
    for response in (
        client.get("/healthz"),
        client.get("/api/v1/orgs/nope"),
        client.get("/nope/x/y/z"),
    ):
        assert len(response.headers["x-trace-id"]) == 16
    error = client.get("/api/v1/orgs/nope")
    assert error.json()["trace_id"] == error.headers["x-trace-id"]
