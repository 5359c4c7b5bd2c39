"""One SQLite writer at a time, queued by the kernel rather than by sleeping.

SQLite lets one transaction write at a time; the others wait in its busy
handler, which sleeps 1, 2, 5, 10 ... 100 ms between tries and so leaves the
lock idle while writers sleep (under load, a third of the machine sat idle and
p99 sign-ins took over a second). Each connection here takes an exclusive
``flock`` on a file beside the database before the statement that opens its
write transaction, and drops it when the transaction ends: waiters, in this
process or another worker's, wake the moment the writer is done.

Readers never take it (WAL readers do not block writers). A thread that already
holds it through another connection does not wait for itself; that connection
falls back to SQLite's busy timeout, as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

__all__ = ["connection_class"]

# pysqlite opens a transaction implicitly before these (and BEGIN opens one).
_OPENING = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")
_holding = threading.local()


def connection_class(database_path: str) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` subclass (for ``connect(factory=...)``) that
    serializes writers on ``<database_path>-writer.lock``."""
    return type(
        "WriterLockedConnection", (_Connection,), {"lock_path": f"{database_path}-writer.lock"}
    )


class _Connection(sqlite3.Connection):
    lock_path: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._locked = False

    def cursor(self, factory: Any = None) -> Any:
        """Cursors that take the lock; one of another class (and ``executescript``)
        writes under SQLite's busy timeout, as before."""
        return _Cursor(self) if factory is None else super().cursor(factory)

    def before(self, sql: str) -> None:
        if self._locked or self.in_transaction or getattr(_holding, "connection", None):
            return
        if sql.lstrip()[:7].upper().startswith(_OPENING):
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._locked = True
            _holding.connection = self

    def after(self) -> None:
        """Drop the lock once no transaction is open (ended, or never begun)."""
        if self._locked and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        self._locked = False
        if getattr(_holding, "connection", None) is self:
            _holding.connection = None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.after()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.after()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._locked:
                self._release()
            os.close(self._lock_fd)


class _Cursor(sqlite3.Cursor):
    connection: _Connection

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self.connection.before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.after()

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        self.connection.before(sql)
        try:
            return super().executemany(sql, parameters)
        finally:
            self.connection.after()
