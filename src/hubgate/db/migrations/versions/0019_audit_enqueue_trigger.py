"""audit events queue themselves for their streams by trigger

An AFTER INSERT trigger on audit_events writes one audit_deliveries row per stream
that takes the event (the event's org's streams and the operator-wide ones), in
the inserting transaction as before, without a second statement from the client:
every audited write (several per sign-in) saved a round trip on PostgreSQL.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ENQUEUE = """
    INSERT INTO audit_deliveries (stream_id, event_id)
    SELECT id, NEW.id FROM audit_streams WHERE org_id IS NULL OR org_id = NEW.org_id;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""CREATE FUNCTION audit_events_enqueue() RETURNS trigger
                LANGUAGE plpgsql AS $$ BEGIN {_ENQUEUE} RETURN NULL; END $$"""
        )
        op.execute(
            """CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events
               FOR EACH ROW EXECUTE FUNCTION audit_events_enqueue()"""
        )
    else:
        op.execute(
            f"""CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events
                FOR EACH ROW BEGIN {_ENQUEUE} END"""
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_enqueue ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_enqueue()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_enqueue")
