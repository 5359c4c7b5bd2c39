"""The migrations build exactly the schema the models describe, and the audit log
is append-only in the database itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError

from hubgate.audit import Actor, record
from hubgate.db.engine import create_database
from hubgate.db.migrate import upgrade
from hubgate.db.models import AuditEvent, Base


def test_models_and_migrations_agree(database_url: str) -> None:
    database = create_database(database_url)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    database.engine.dispose()
    assert differences == []


@pytest.mark.parametrize("change", ["update", "delete"])
def test_audit_events_cannot_be_changed(database_url: str, change: str) -> None:
    database = create_database(database_url)
    with database.transaction() as db:
        record(db, Actor.system(), "test.event", target="x")
    statement = (
        update(AuditEvent).values(action="tampered") if change == "update" else delete(AuditEvent)
    )
    with pytest.raises(DatabaseError, match="append-only"), database.transaction() as db:
        db.execute(statement)
    with database.transaction() as db:
        assert [e.action for e in db.query(AuditEvent)] == ["test.event"]
    database.engine.dispose()


def test_rebuilding_the_accounts_tables_keeps_their_children_and_ids_are_not_reused(
    tmp_path: Path,
) -> None:
    """0006 rebuilds ``users`` and ``emails`` on SQLite (for AUTOINCREMENT); with
    foreign keys on, dropping the old table would cascade to every membership."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    database = create_database(url)
    with database.engine.begin() as connection:
        for statement in (
            "INSERT INTO users (id, display_name, created_at) VALUES (1, 'a', '2026-01-01'),"
            " (2, 'b', '2026-01-01')",
            "INSERT INTO emails (id, user_id, address, domain, is_primary, created_at)"
            " VALUES (1, 1, 'a@x.example', 'x.example', 1, '2026-01-01')",
            "INSERT INTO orgs (id, name, display_name, created_at) VALUES (1, 'o', 'O', '2026-01-01')",
            "INSERT INTO memberships (org_id, user_id, role, role_source, external_collaborator,"
            " created_at) VALUES (1, 1, 'admin', 'manual', 0, '2026-01-01')",
        ):
            connection.execute(text(statement))
    database.engine.dispose()
    upgrade(url)
    database = create_database(url)
    with database.engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM memberships")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM emails")).scalar() == 1
        connection.execute(text("DELETE FROM users WHERE id = 2"))
        connection.execute(
            text("INSERT INTO users (display_name, created_at) VALUES ('c', '2026-01-02')")
        )
        assert connection.execute(text("SELECT max(id) FROM users")).scalar() == 3
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.engine.dispose()
