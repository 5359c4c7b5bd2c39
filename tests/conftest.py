"""Shared fixtures: a migrated database per test (SQLite, or PostgreSQL when
``HUBGATE_TEST_DATABASE_URL`` is set), a runtime, the app and a client."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import make_url, text

from hubgate.access import OrgRole
from hubgate.accounts import users
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.config import Settings, load_settings
from hubgate.db.engine import create_database, create_postgresql_database_if_missing
from hubgate.db.migrate import upgrade
from hubgate.db.models import Org, User
from hubgate.orgs import service
from hubgate.runtime import Runtime, build_runtime
from tests import network_guard


def _pg_url_for_this_process(url: str) -> str:
    """Under pytest-xdist each worker gets a database of its own (``test_gw0`` beside
    ``test``, made on first use): every test empties its database first."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    rendered = base.set(database=f"{base.database}_{worker}").render_as_string(hide_password=False)
    create_postgresql_database_if_missing(rendered)
    return rendered


PG_URL = _pg_url_for_this_process(os.environ.get("HUBGATE_TEST_DATABASE_URL", ""))
PASSWORD = "correct horse battery staple"
T = TypeVar("T")
_TABLES = (
    "audit_deliveries, audit_streams, audit_events, ephemeral, outbox, throttle, sso_authentications, sso_links, invitations, "
    "setup_links, scim_group_teams, scim_group_members, scim_user_emails, scim_groups, "
    "scim_users, scim_tokens, "
    "role_mappings, team_mappings, org_domains, org_sso, sessions, token_usage, tokens, resources, "
    "sso_connections, platform_links, platform_providers, signing_keys, "
    "team_memberships, teams, memberships, emails, users, orgs"
)


_GUARDED_SUITES = {"unit", "integration", "security"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``HUBGATE_TEST_DATABASE_ONLY=1`` (scripts/test.sh's second pass, on PostgreSQL)
    keeps only the tests that use a database (every database fixture starts from
    ``migrated_template``): the others already ran on the first pass and would run
    exactly the same way again."""
    if os.environ.get("HUBGATE_TEST_DATABASE_ONLY") != "1":
        return
    kept = [item for item in items if "migrated_template" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(autouse=True)
def no_network_in_transactions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any outbound HTTP or DNS call made while the calling thread has a database
    transaction open fails the test (tests/network_guard.py); the e2e and browser
    suites drive real servers from other processes and are left out."""
    if not _GUARDED_SUITES.intersection(request.path.parts):
        yield
        return
    network_guard.install()
    network_guard.violations.clear()
    network_guard.armed = True
    try:
        yield
    finally:
        network_guard.armed = False
    assert not network_guard.violations, network_guard.violations


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per run: a SQLite file to copy, or the PostgreSQL schema."""
    if PG_URL:
        database = create_database(PG_URL)
        with database.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        database.engine.dispose()
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        database = create_database(PG_URL)
        with database.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
        database.engine.dispose()
        yield PG_URL
        return
    target = tmp_path / "hubgate.db"
    shutil.copy(migrated_template, target)
    yield f"sqlite:///{target}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "dev",
        "database_url": database_url,
        "password_memory_kib": 1024,
        "password_time_cost": 1,
        "base_url": "http://testserver",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings)
    yield runtime
    runtime.db.engine.dispose()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=rt)) as test_client:
        yield test_client


@dataclass
class World:
    """A small org to test against: ``acme`` with an admin, a writer and a reader."""

    rt: Runtime

    def user(self, email: str, *, verified: bool = True, password: str = PASSWORD) -> User:
        with self.rt.db.transaction() as db:
            return users.create_user(db, self.rt, email, password=password, verified=verified)

    def org(self, name: str, admin: User) -> Org:
        with self.rt.db.transaction() as db:
            return service.create_org(db, Actor.system(), name, None, db.merge(admin))

    def member(self, org: Org, user: User, role: OrgRole) -> None:
        from hubgate.access import Principal

        operator = Principal.operator()
        with self.rt.db.transaction() as db:
            service.add_member(db, Actor.system(), operator, db.merge(org), db.merge(user), role)


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign the client in; returns the CSRF token for cookie-authenticated API calls."""
    response = client.post("/api/v1/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    client.headers["x-csrf-token"] = token
    return token


def run_async(awaitable: Coroutine[Any, Any, T]) -> T:
    """Run ``awaitable`` to completion on a thread of its own, so an event loop a
    previous test left set on the calling thread cannot make ``asyncio.run`` refuse."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, awaitable).result()


def on_event_loop() -> bool:
    """Whether the calling thread is running an asyncio event loop: blocking work
    (a transaction, a fetch) done there stalls every other request of the worker."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class StandInServer:
    """Stands in for ``uvicorn.Server`` where a CLI command would serve (``hubgate
    demo``): ``run`` hands the server's config to ``during`` and returns at once, as
    a server stopped by Ctrl+C does."""

    config: uvicorn.Config
    during: Callable[[uvicorn.Config], object]
    started: bool = True
    should_exit: bool = False

    def run(self) -> None:
        self.during(self.config)
