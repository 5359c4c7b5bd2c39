"""What benchmarks share: a migrated database seeded through the services, and a
running hubgate (``uvicorn --workers N``) on loopback that is always stopped.

Typical use::

    with scratch_database(url) as database_url:
        seeded = seed(database_url, SeedSize())
        with serve(database_url, workers=2) as base_url:
            ...

SQLite runs on a temporary file; PostgreSQL gets its database created if the server
lacks it, then ``schema public`` dropped and recreated, so only point ``url`` at a
throwaway database.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from hubgate.access import OrgRole, Principal, ResourceKind, TeamRole, Visibility
from hubgate.accounts import tokens, users
from hubgate.audit import Actor
from hubgate.config import load_settings
from hubgate.db.engine import create_database, create_postgresql_database_if_missing
from hubgate.db.migrate import upgrade
from hubgate.db.models import Org, Team, User
from hubgate.orgs import resources, service, team_tokens
from hubgate.runtime import Runtime, build_runtime

__all__ = [
    "PASSWORD",
    "SeedSize",
    "Seeded",
    "Server",
    "free_port",
    "running",
    "scratch_database",
    "seed",
    "serve",
]

PASSWORD = "bench horse battery staple"
_SYSTEM = Actor.system("bench")
_ROLES = (OrgRole.READ, OrgRole.CONTRIBUTOR, OrgRole.WRITE, OrgRole.ADMIN)
_ROLE_WEIGHTS = (35, 20, 30, 15)
_KINDS = tuple(ResourceKind)
_KIND_WEIGHTS = (40, 25, 15, 20)
_READY_SECONDS = 60.0


# -- database ---------------------------------------------------------------


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A migrated, empty database: a temporary SQLite file, or ``url`` wiped."""
    if url:
        if not url.startswith("postgresql"):
            raise ValueError("Give a PostgreSQL URL; SQLite runs on a temporary file anyway.")
        _reset_schema(url)
        upgrade(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="hubgate-bench-") as folder:
        sqlite_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(sqlite_url)
        yield sqlite_url


def _reset_schema(url: str) -> None:
    create_postgresql_database_if_missing(url)
    database = create_database(url)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    finally:
        database.engine.dispose()


# -- seed -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeedSize:
    orgs: int = 4
    users: int = 300
    teams_per_org: int = 4
    resources: int = 600


@dataclass(frozen=True, slots=True)
class Seeded:
    """The credentials and paths a benchmark drives; the bench user is an org
    ``write`` member with ``read`` on the team that holds the private model."""

    email: str
    password: str
    personal_token: str
    team_token: str
    private_model_uri: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _World:
    db: Session
    rt: Runtime
    rng: random.Random
    users: list[User]
    orgs: list[Org]
    teams: dict[int, list[Team]]
    members: dict[int, list[User]]


def seed(database_url: str, size: SeedSize, *, rng_seed: int = 2024) -> Seeded:
    """Fill the database through the services, in one transaction."""
    rt = _seeding_runtime(database_url)
    try:
        with rt.db.transaction() as db:
            world = _World(db, rt, random.Random(rng_seed), [], [], {}, {})
            _create_users(world, size.users)
            _create_orgs(world, size.orgs)
            _create_teams(world, size.teams_per_org)
            _create_resources(world, size.resources)
            token_count = _create_tokens(world)
            seeded = _bench_principal(world)
        counts = {
            "users": len(world.users) + 1,
            "orgs": len(world.orgs),
            "resources": size.resources + 1,
            "tokens": token_count + 2,
        }
        return replace(seeded, counts=counts)
    finally:
        rt.db.engine.dispose()


def _seeding_runtime(database_url: str) -> Runtime:
    """Cheap argon2 parameters: the hashes carry them, so the server still verifies."""
    settings = load_settings(
        env="dev", database_url=database_url, password_memory_kib=1024, password_time_cost=1
    )
    return build_runtime(settings)


def _operator(org: Org) -> Principal:
    return Principal.operator()


def _create_users(world: _World, count: int) -> None:
    for index in range(count):
        address = f"user{index:04d}@bench.example"
        user = users.create_user(world.db, world.rt, address, password=PASSWORD, verified=True)
        world.users.append(user)


def _create_orgs(world: _World, count: int) -> None:
    """Org ``k`` is founded by user ``k``; everyone joins one org, a quarter two."""
    for index in range(count):
        founder = world.users[index]
        org = service.create_org(world.db, _SYSTEM, f"org{index}", None, founder)
        world.orgs.append(org)
        world.members[org.id] = [founder]
    for index, user in enumerate(world.users[count:], start=count):
        homes = {index % count}
        if world.rng.random() < 0.25:
            homes.add(world.rng.randrange(count))
        for home in homes:
            _join(world, world.orgs[home], user)


def _join(world: _World, org: Org, user: User) -> None:
    role = world.rng.choices(_ROLES, _ROLE_WEIGHTS)[0]
    service.add_member(world.db, _SYSTEM, _operator(org), org, user, role)
    world.members[org.id].append(user)


def _create_teams(world: _World, per_org: int) -> None:
    """Teams ``team-0..`` per org; each member sits in about a third of them."""
    for org in world.orgs:
        operator = _operator(org)
        teams = [
            service.create_team(world.db, _SYSTEM, operator, org, f"team-{k}", None)
            for k in range(per_org)
        ]
        world.teams[org.id] = teams
        for user in world.members[org.id]:
            for team in teams:
                if world.rng.random() < 0.33:
                    role = world.rng.choice(tuple(TeamRole))
                    service.set_team_member(world.db, _SYSTEM, operator, org, team, user, role)


def _create_resources(world: _World, count: int) -> None:
    """Mostly private, half of them in a team, created by a random member."""
    for index in range(count):
        org = world.rng.choice(world.orgs)
        kind = world.rng.choices(_KINDS, _KIND_WEIGHTS)[0]
        private = world.rng.random() < 0.6
        team = world.rng.choice(world.teams[org.id]) if world.rng.random() < 0.5 else None
        _create_resource(
            world, org, kind, f"{kind.value}-{index:04d}", private, team.name if team else None
        )


def _create_resource(
    world: _World, org: Org, kind: ResourceKind, name: str, private: bool, team: str | None
) -> None:
    creator = world.rng.choice(world.members[org.id])
    actor = Actor(label=f"user:{creator.id}", user_id=creator.id)
    visibility = Visibility.PRIVATE if private else Visibility.PUBLIC
    resources.create(world.db, actor, _operator(org), org, kind, name, visibility, team)


def _create_tokens(world: _World) -> int:
    """A personal token per user and a team token per team, so lookups hit a real index."""
    for user in world.users:
        _personal_token(world, user, "cli", ["read", "write"])
    for org in world.orgs:
        for team in world.teams[org.id]:
            _team_token(world, org, team, "ci")
    return len(world.users) + sum(len(teams) for teams in world.teams.values())


def _personal_token(world: _World, user: User, name: str, scopes: list[str]) -> str:
    actor = Actor(label=f"user:{user.id}", user_id=user.id)
    now = world.rt.now()
    return tokens.create_personal(world.db, actor, user.id, name, scopes, None, now).secret


def _team_token(world: _World, org: Org, team: Team, name: str) -> str:
    now = world.rt.now()
    new = team_tokens.create(
        world.db, _SYSTEM, _operator(org), org, team, name, ["read"], None, now
    )
    return new.secret


def _bench_principal(world: _World) -> Seeded:
    """The user, tokens and private model the HTTP benchmarks use, in ``org0/team-0``."""
    org, team = world.orgs[0], world.teams[world.orgs[0].id][0]
    email = "bench@bench.example"
    user = users.create_user(world.db, world.rt, email, password=PASSWORD, verified=True)
    operator = _operator(org)
    service.add_member(world.db, _SYSTEM, operator, org, user, OrgRole.WRITE)
    service.set_team_member(world.db, _SYSTEM, operator, org, team, user, TeamRole.READ)
    founder_user = world.members[org.id][0]
    founder = Actor(label=f"user:{founder_user.id}", user_id=founder_user.id)
    resources.create(
        world.db, founder, operator, org, ResourceKind.MODEL, "bench-private",
        Visibility.PRIVATE, team.name,
    )  # fmt: skip
    return Seeded(
        email=email,
        password=PASSWORD,
        personal_token=_personal_token(world, user, "bench", ["read"]),
        team_token=_team_token(world, org, team, "bench-team"),
        private_model_uri=f"/{org.name}/models/bench-private",
    )


# -- server -----------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Server:
    """A running hubgate: where it answers, and the uvicorn master's process id
    (its children are the workers)."""

    base_url: str
    pid: int


@contextmanager
def serve(database_url: str, *, workers: int = 2) -> Iterator[str]:
    """Run ``uvicorn --factory hubgate.app:create_app`` on loopback; yields its base URL."""
    with running(database_url, workers=workers) as server:
        yield server.base_url


@contextmanager
def running(
    database_url: str,
    *,
    workers: int = 2,
    wrapper: Sequence[str] = (),
    ready_seconds: float = _READY_SECONDS,
) -> Iterator[Server]:
    """As :func:`serve`, for benchmarks that also watch the processes; ``wrapper``
    runs the server under another program (valgrind), which may need more than
    ``ready_seconds`` to answer.

    The server runs in its own process group, which is terminated (and killed if
    it lingers) however the block exits.
    """
    port = free_port()
    command = [
        *wrapper, sys.executable, "-m", "uvicorn", "--factory", "hubgate.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, "HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_ready(process, base_url, log, ready_seconds)
            yield Server(base_url, process.pid)
        finally:
            _stop(process)


def _wait_ready(
    process: subprocess.Popen[bytes], base_url: str, log: IO[bytes], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hubgate exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"hubgate did not answer /healthz in {seconds:.0f}s:\n{_tail(log)}")


def _tail(log: IO[bytes], size: int = 4000) -> str:
    log.seek(0)
    return log.read()[-size:].decode(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master (it stops its workers), then SIGKILL whatever is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
