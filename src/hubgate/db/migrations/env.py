"""Alembic environment: migrations run online against the configured URL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from hubgate.db.engine import create_database
from hubgate.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    database = create_database(url)
    engine = database.engine.execution_options()
    with engine.connect() as connection:
        if database.is_sqlite:
            # A batch migration rebuilds a table by copying it and dropping the old
            # one; with foreign keys on, that DROP would cascade to every child row
            # (SQLite's "make other kinds of table schema changes", step 1). The
            # pragma works outside a transaction only, hence the DB-API connection.
            _sqlite_execute(connection, "PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=database.is_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if database.is_sqlite:
            broken = _sqlite_execute(connection, "PRAGMA foreign_key_check")
            _sqlite_execute(connection, "PRAGMA foreign_keys=ON")
            assert not broken, f"the migration left rows without their parents: {broken}"
    engine.dispose()


def _sqlite_execute(connection: Connection, statement: str) -> list[Any]:
    cursor = connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    return list(cursor.fetchall())


run_migrations_online()
