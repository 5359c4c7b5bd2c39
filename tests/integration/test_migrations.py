"""The migrations build exactly the schema the models describe, and the audit log
is append-only in the database itself."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from hubgate.audit import Actor, record
from hubgate.db.engine import create_database
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
