"""The engine and session factory, with SQLite set up for concurrent use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from hubgate.db import sqlite_writer

__all__ = ["Database", "core", "create_database", "create_postgresql_database_if_missing"]


def create_postgresql_database_if_missing(url: str) -> None:
    """Create the PostgreSQL database ``url`` names unless the server has it (for
    the test suite's per-worker databases and the benches' scratch ones)."""
    target = make_url(url)
    if not target.database:
        raise ValueError("The PostgreSQL URL must name a database.")
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            known = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).first()
            if known is None:
                quoted = connection.dialect.identifier_preparer.quote(target.database)
                connection.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        engine.dispose()


def core(db: Session) -> Connection:
    """The session's connection for Core statements on hot paths (a third of the
    ORM's cost per statement), after pending ORM changes are flushed so the
    statement sees them and their rows exist for its foreign keys."""
    db.flush()
    return db.connection()


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        with self.sessions.begin() as session:
            yield session

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return bool(connection.execute(text("SELECT 1")).scalar_one() == 1)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_database(url: str, *, echo: bool = False, pool_size: int = 8) -> Database:
    """Build the engine for ``url``: SQLite (WAL, foreign keys) or PostgreSQL.

    No pre-ping (a round trip per transaction): connections are recycled every
    five minutes, and one lost to a database restart is dropped with the pool
    when its error surfaces (a 503 the client may retry)."""
    if url.startswith("sqlite"):
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 10}
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            connect_args["factory"] = sqlite_writer.connection_class(path)
        engine = create_engine(
            url,
            echo=echo,
            connect_args=connect_args,
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=300
        )
    sessions = sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions)
