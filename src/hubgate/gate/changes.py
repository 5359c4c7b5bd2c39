"""Reading the change sequence (:mod:`hubgate.db.change_triggers`) once per
forward-auth check, so a cached answer is never served after a change that could
alter it has committed, on this instance or any other.

The read must begin after the request arrived: a change that committed before
the proxy asked is then always seen.

- SQLite: one read of the counter row on a connection of the gate's own (a few
  microseconds, no lock: WAL readers never wait for the writer).
- PostgreSQL: a round trip per read (the sum of the shard rows), so concurrent
  checks share one: a check waits for the next read to *start* after it arrived,
  and every check that arrived meanwhile takes the same answer. Under load one
  read serves many checks.

``None`` means "unknown" (a row is missing, the database did not answer): the
caller must not trust its cache then (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any, Protocol

import psycopg
from sqlalchemy import make_url

from hubgate.db.change_triggers import read_statement

__all__ = ["ChangeSequence", "PostgresSequence", "SqliteSequence", "for_url"]

_SQLITE = read_statement("sqlite")
_POSTGRESQL = read_statement("postgresql")


class ChangeSequence(Protocol):
    async def current(self) -> int | None:
        """The sequence as of a read that began after this call."""
        ...

    def close(self) -> None: ...


class SqliteSequence:
    """Reads the counter on a connection of its own, from the event loop's thread."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    async def current(self) -> int | None:
        try:
            if self._connection is None:
                self._connection = self._connect()
            row = self._connection.execute(_SQLITE).fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return None if row is None else int(row[0])

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=1.0
        )
        connection.execute("PRAGMA query_only = 1")
        return connection

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None


class PostgresSequence:
    """Shares one round trip among the checks that arrive while one is under way."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: asyncio.Future[int | None] | None = None
        self._reading = False

    async def current(self) -> int | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests): the old connection is unusable
            self._forget()
            self._loop = loop
        if self._next is None:
            self._next = loop.create_future()
            if not self._reading:
                self._reading = True
                loop.create_task(self._read_while_asked())
        return await asyncio.shield(self._next)

    async def _read_while_asked(self) -> None:
        """Each pass answers every check that arrived before it began."""
        try:
            while self._next is not None:
                waiting, self._next = self._next, None
                waiting.set_result(await self._read())
        finally:
            self._reading = False

    async def _read(self) -> int | None:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, prepare_threshold=0
                )
            cursor = await self._connection.execute(_POSTGRESQL)
            row = await cursor.fetchone()
        except psycopg.Error:
            self._forget()
            return None
        return None if row is None or row[0] is None else int(row[0])

    def _forget(self) -> None:
        """Drop the connection without waiting on it (it may belong to a closed loop)."""
        connection, self._connection = self._connection, None
        self._next, self._reading = None, False
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.pgconn.finish()

    def close(self) -> None:
        self._forget()

    def __del__(self) -> None:
        """An app dropped without its shutdown (a test's client) still closes it."""
        self._forget()


def for_url(url: str) -> ChangeSequence | None:
    """The reader for hubgate's database URL; ``None`` for an in-memory SQLite
    database (no second connection sees it: the gate then keeps no cache)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresSequence(_libpq_conninfo(url))
    path = parsed.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return SqliteSequence(path)


def _libpq_conninfo(url: str) -> str:
    """``postgresql+psycopg://...`` as libpq reads it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
