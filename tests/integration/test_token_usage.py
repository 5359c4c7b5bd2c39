"""Usage per token end to end: forward-auth calls counted in memory, one flush,
then the exact figures on the API, the token pages and ``/metrics``; no database
write per call; a failed flush loses nothing and writes nothing twice.

The flusher's own interval is an hour here, so only the flushes a test makes
run while it looks (and the one at shutdown, after it has looked)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, event, select

from hubgate import metrics
from hubgate.access import OrgRole, Principal, ResourceKind, Visibility
from hubgate.accounts import tokens
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.engine import create_database
from hubgate.db.models import Resource, Token, TokenUsage
from hubgate.gate.usage import UsageCounter
from hubgate.orgs import resources, service, team_tokens
from hubgate.runtime import Runtime, build_runtime
from tests.conftest import World, make_settings, sign_in


@pytest.fixture
def rt(database_url: str) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, usage_flush_seconds=3600))
    yield runtime
    runtime.db.engine.dispose()


@dataclass
class Acme:
    personal: str
    personal_id: int
    team: str
    team_id: int
    chat_id: int
    embed_id: int


@pytest.fixture
def acme(world: World, rt: Runtime) -> Acme:
    """``acme`` with an org-wide deployment ``chat``, a deployment ``embed`` of
    the team ``research``, a personal token of a writer and a team token."""
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    member = world.user("member@acme.test")
    world.member(org, member, OrgRole.WRITE)
    world.member(org, world.user("other@acme.test"), OrgRole.WRITE)
    operator, actor = Principal.operator(), Actor.system()
    with rt.db.transaction() as db:
        org = db.merge(org)
        team = service.create_team(db, actor, operator, org, "research", None)
        chat = resources.create(
            db, actor, operator, org, ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE
        )
        embed = resources.create(
            db, actor, operator, org, ResourceKind.DEPLOYMENT, "embed", Visibility.PRIVATE,
            "research",
        )  # fmt: skip
        personal = tokens.issue(db, user_id=member.id, name="cli", scopes="write", expires_at=None)
        shared = team_tokens.create(
            db, actor, operator, org, team, "bot", ["inference"], None, rt.now()
        )
        return Acme(
            personal.secret, personal.row.id, shared.secret, shared.row.id, chat.id, embed.id
        )


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=rt)) as test_client:
        yield test_client


def _check(client: TestClient, secret: str, uri: str, method: str = "POST") -> int:
    headers = {"authorization": f"Bearer {secret}", "x-original-uri": uri}
    response = client.get("/auth/check", headers={**headers, "x-original-method": method})
    return response.status_code


def _usage(client: TestClient) -> UsageCounter:
    app = client.app
    assert isinstance(app, FastAPI)
    counter: UsageCounter = app.state.usage
    return counter


@pytest.fixture
def statements(rt: Runtime) -> Iterator[list[str]]:
    """Every SQL statement the app runs, as sent (one entry per executemany)."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    engine: Engine = rt.db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_calls_are_counted_once_flushed_and_shown(
    client: TestClient, acme: Acme, rt: Runtime
) -> None:
    for _ in range(5):
        assert _check(client, acme.personal, "/acme/deployments/chat/predict") == 200
    for _ in range(3):
        assert _check(client, acme.team, "/acme/deployments/embed/v1/chat/completions") == 200
    # Not calls: reading the deployment, a refused call, another token's refusal.
    assert _check(client, acme.personal, "/acme/deployments/chat", "GET") == 200
    assert _check(client, acme.team, "/acme/deployments/chat/predict") == 403
    written = metrics.REGISTRY.get_sample_value(
        "hubgate_gate_token_calls_total", {"outcome": "written"}
    )
    assert _usage(client).flush(rt.db) == 8
    after = metrics.REGISTRY.get_sample_value(
        "hubgate_gate_token_calls_total", {"outcome": "written"}
    )
    assert (after or 0) - (written or 0) == 8

    sign_in(client, "member@acme.test")
    body = client.get(f"/api/v1/me/tokens/{acme.personal_id}/usage").json()
    assert body["token_id"] == acme.personal_id and body["day"] == rt.now().date().isoformat()
    assert (body["calls_today"], body["calls_7_days"], body["calls_30_days"]) == (5, 5, 5)
    assert body["deployments"] == [
        {"org": "acme", "deployment": "chat", "calls_today": 5, "calls_7_days": 5,
         "calls_30_days": 5},
    ]  # fmt: skip
    assert body["last_used_at"] is not None
    page = client.get("/settings/tokens").text
    assert "acme/chat</td><td>5</td><td>5</td><td>5</td>" in page

    client.cookies.clear()
    sign_in(client, "admin@acme.test")
    team = client.get(f"/api/v1/orgs/acme/teams/research/tokens/{acme.team_id}/usage").json()
    assert [(d["deployment"], d["calls_today"]) for d in team["deployments"]] == [("embed", 3)]
    assert (
        "acme/embed</td><td>3</td><td>3</td><td>3</td>" in client.get("/acme/teams/research").text
    )


def test_windows_of_7_and_30_days(client: TestClient, acme: Acme, rt: Runtime) -> None:
    today = rt.now().date()
    with rt.db.transaction() as db:
        for days_ago, calls in [(0, 1), (6, 10), (7, 100), (29, 1_000), (30, 10_000)]:
            db.add(TokenUsage(
                token_id=acme.personal_id, resource_id=acme.chat_id,
                day=today - timedelta(days=days_ago), calls=calls,
            ))  # fmt: skip
    sign_in(client, "member@acme.test")
    body = client.get(f"/api/v1/me/tokens/{acme.personal_id}/usage").json()
    assert (body["calls_today"], body["calls_7_days"], body["calls_30_days"]) == (1, 11, 1111)


def test_no_database_write_per_call_until_the_flush(
    client: TestClient, acme: Acme, rt: Runtime, statements: list[str]
) -> None:
    for _ in range(100):
        assert _check(client, acme.personal, "/acme/deployments/chat/invoke") == 200
    assert not [s for s in statements if "token_usage" in s]
    touches = [s for s in statements if s.startswith("UPDATE tokens")]
    assert len(touches) <= 2, "resolve()'s own touch, at most once a minute"
    statements.clear()
    assert _usage(client).flush(rt.db) == 100
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 2, writes  # one upsert (of every key), one last_used_at update
    assert writes[0].startswith("INSERT INTO token_usage") and "ON CONFLICT" in writes[0]
    assert writes[1].startswith("UPDATE tokens SET last_used_at=")
    with rt.db.transaction() as db:
        assert db.scalars(select(TokenUsage.calls)).all() == [100]


def test_one_upsert_per_key_and_calls_add_up_across_flushes(acme: Acme, rt: Runtime) -> None:
    counter, now = UsageCounter(), rt.now()
    for _ in range(7):
        counter.count(acme.personal_id, acme.chat_id, now)
    counter.count(acme.personal_id, acme.chat_id, now - timedelta(days=1))
    counter.count(acme.team_id, acme.chat_id, now)
    assert counter.flush(rt.db) == 9
    counter.count(acme.personal_id, acme.chat_id, now)
    assert counter.flush(rt.db) == 1
    assert counter.flush(rt.db) == 0
    with rt.db.transaction() as db:
        rows = db.execute(select(TokenUsage.token_id, TokenUsage.day, TokenUsage.calls)).all()
        last = db.scalar(select(Token.last_used_at).where(Token.id == acme.personal_id))
    assert sorted(rows) == sorted([
        (acme.personal_id, now.date(), 8),
        (acme.personal_id, now.date() - timedelta(days=1), 1),
        (acme.team_id, now.date(), 1),
    ])  # fmt: skip
    assert last == now


def test_a_failed_flush_keeps_the_counts_and_the_next_writes_them_once(
    acme: Acme, rt: Runtime
) -> None:
    counter, now = UsageCounter(), rt.now()
    down = create_database("sqlite:////nonexistent-dir/hubgate.db")  # cannot be opened
    for _ in range(4):
        counter.count(acme.personal_id, acme.chat_id, now)
    failed = metrics.REGISTRY.get_sample_value(
        "hubgate_token_usage_flushes_total", {"outcome": "failed"}
    )
    assert counter.flush(down) == 0
    assert counter.flush(down) == 0
    assert (
        metrics.REGISTRY.get_sample_value(
            "hubgate_token_usage_flushes_total", {"outcome": "failed"}
        )
        == (failed or 0) + 2
    )
    counter.count(acme.personal_id, acme.chat_id, now)
    assert counter.flush(rt.db) == 5
    assert counter.flush(rt.db) == 0
    with rt.db.transaction() as db:
        assert db.scalars(select(TokenUsage.calls)).all() == [5]


def test_a_revoked_tokens_usage_stays_and_a_deleted_ones_goes(
    client: TestClient, acme: Acme, rt: Runtime
) -> None:
    assert _check(client, acme.personal, "/acme/deployments/chat/predict") == 200
    assert _usage(client).flush(rt.db) == 1
    sign_in(client, "member@acme.test")
    assert client.delete(f"/api/v1/me/tokens/{acme.personal_id}").status_code == 204
    assert client.get(f"/api/v1/me/tokens/{acme.personal_id}/usage").json()["calls_today"] == 1
    counter = UsageCounter()
    counter.count(acme.personal_id, acme.chat_id, rt.now())  # counted, then deleted
    with rt.db.transaction() as db:
        db.execute(delete(Token).where(Token.id == acme.personal_id))
        assert db.scalars(select(TokenUsage.calls)).all() == [], "cascaded"
    assert counter.flush(rt.db) == 0, "an orphan count is discarded, not retried"
    assert not counter.take()
    assert client.get(f"/api/v1/me/tokens/{acme.personal_id}/usage").status_code == 404


def test_a_deleted_deployment_does_not_block_the_flush(acme: Acme, rt: Runtime) -> None:
    counter = UsageCounter()
    counter.count(acme.personal_id, acme.chat_id, rt.now())
    counter.count(acme.team_id, acme.embed_id, rt.now())
    with rt.db.transaction() as db:
        db.execute(delete(Resource).where(Resource.id == acme.chat_id))
    assert counter.flush(rt.db) == 1
    with rt.db.transaction() as db:
        assert db.scalars(select(TokenUsage.resource_id)).all() == [acme.embed_id]


def test_only_who_may_see_a_token_reads_its_usage(client: TestClient, acme: Acme) -> None:
    sign_in(client, "other@acme.test")
    assert client.get(f"/api/v1/me/tokens/{acme.personal_id}/usage").status_code == 404
    team_usage = f"/api/v1/orgs/acme/teams/research/tokens/{acme.team_id}/usage"
    assert client.get(team_usage).status_code in {403, 404}
    assert client.get(
        f"/api/v1/orgs/acme/teams/research/tokens/{acme.personal_id}/usage"
    ).status_code in {403, 404}
    client.cookies.clear()
    assert client.get(team_usage).status_code == 401
    bearer = {"authorization": f"Bearer {acme.team}"}
    assert client.get(team_usage, headers=bearer).status_code in {403, 404}


def test_shutdown_flushes_what_was_counted(acme: Acme, rt: Runtime) -> None:
    with TestClient(create_app(runtime=rt)) as client:
        assert _check(client, acme.team, "/acme/deployments/embed/generate") == 200
        with rt.db.transaction() as db:
            assert db.scalars(select(TokenUsage.calls)).all() == []
    with rt.db.transaction() as db:
        assert db.scalars(select(TokenUsage.calls)).all() == [1]


def test_what_waits_through_failed_flushes_stays_bounded(
    acme: Acme, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    counter, now = UsageCounter(max_keys=2), rt.now()
    down = create_database("sqlite:////nonexistent-dir/hubgate.db")
    counter.count(acme.personal_id, acme.chat_id, now)
    counter.count(acme.team_id, acme.embed_id, now)
    assert counter.flush(down) == 0
    counter.count(acme.personal_id, acme.embed_id, now)  # a third key, counted live
    counter.count(acme.personal_id, acme.chat_id, now)  # a kept key: it still counts
    dropped = metrics.REGISTRY.get_sample_value(
        "hubgate_gate_token_calls_total", {"outcome": "dropped"}
    )
    assert counter.flush(down) == 0
    assert (
        metrics.REGISTRY.get_sample_value("hubgate_gate_token_calls_total", {"outcome": "dropped"})
        == (dropped or 0) + 1
    )
    assert "1 calls not counted" in caplog.text
    assert counter.flush(rt.db) == 3
    with rt.db.transaction() as db:
        rows = db.execute(select(TokenUsage.token_id, TokenUsage.resource_id, TokenUsage.calls))
        assert sorted(rows) == sorted(
            [(acme.personal_id, acme.chat_id, 2), (acme.team_id, acme.embed_id, 1)]
        )
