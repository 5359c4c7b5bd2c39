"""One SQLite writer at a time across connections, by flock, and readers never wait."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubgate.db import sqlite_writer


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "writer.db")
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.commit()
    setup.close()
    yield path


def _connect(path: str, timeout: float = 10) -> sqlite3.Connection:
    return sqlite3.connect(
        path, timeout=timeout, factory=sqlite_writer.connection_class(path),
        check_same_thread=False,
    )  # fmt: skip


def _lock_is_free(path: str) -> bool:
    """Whether another process could take the writer lock right now."""
    fd = os.open(f"{path}-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_write_holds_the_lock_until_commit(database: str) -> None:
    writer = _connect(database)
    writer.cursor().execute("SELECT count(*) FROM t")
    assert _lock_is_free(database), "a read takes no lock"
    writer.cursor().execute("INSERT INTO t VALUES (1)")
    assert not _lock_is_free(database)
    writer.commit()
    assert _lock_is_free(database)
    writer.close()


def test_rollback_and_close_release_the_lock(database: str) -> None:
    writer = _connect(database)
    writer.cursor().execute("UPDATE t SET x = 2")
    assert not _lock_is_free(database)
    writer.rollback()
    assert _lock_is_free(database)
    writer.cursor().execute("DELETE FROM t")
    writer.close()
    assert _lock_is_free(database)


def test_a_failed_statement_outside_a_transaction_releases_it(database: str) -> None:
    writer = _connect(database)
    with pytest.raises(sqlite3.OperationalError):
        writer.cursor().execute("INSERT INTO missing VALUES (1)")
    assert not writer.in_transaction
    assert _lock_is_free(database)
    writer.close()


def test_readers_see_the_last_commit_while_a_write_is_open(database: str) -> None:
    writer, reader = _connect(database), _connect(database)
    writer.cursor().execute("INSERT INTO t VALUES (7)")
    assert reader.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.commit()
    assert reader.cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)
    writer.close()
    reader.close()


def test_a_thread_holding_the_lock_does_not_wait_for_itself(database: str) -> None:
    """A second connection of the same thread skips the lock and meets SQLite's own
    busy timeout, an error, instead of waiting forever on itself."""
    first, second = _connect(database), _connect(database, timeout=0.05)
    first.cursor().execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.cursor().execute("INSERT INTO t VALUES (2)")
    first.commit()
    second.rollback()
    second.cursor().execute("INSERT INTO t VALUES (3)")
    second.commit()
    assert first.cursor().execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (3,)]
    first.close()
    second.close()
