"""PostgreSQL: the change sequence in 64 shard rows, so concurrent writers rarely
wait on one row lock

The trigger function bumps the row its transaction id picks; readers sum the rows
(hubgate.db.change_triggers). SQLite, one writer at a time, keeps its one row.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hubgate.db import change_triggers

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_SHARDS = 64


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    shards = sa.table("gate_changes", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger))
    op.bulk_insert(shards, [{"id": shard, "seq": 0} for shard in range(_SHARDS) if shard != 1])
    change_triggers.create_function(connection)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE gate_changes SET seq = (SELECT sum(seq) FROM gate_changes) WHERE id = 1")
        op.execute("DELETE FROM gate_changes WHERE id <> 1")
        op.execute(
            """
            CREATE OR REPLACE FUNCTION hubgate_gate_bump() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE gate_changes SET seq = seq + 1 WHERE id = 1;
                RETURN NULL;
            END $$
            """
        )
