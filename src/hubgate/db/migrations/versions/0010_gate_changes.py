"""the change sequence forward-auth's decision cache is invalidated by

One counter row, bumped by triggers in the writing transaction whenever a row that
can alter an access decision changes (hubgate.db.change_triggers).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hubgate.db import change_triggers

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The tables watched from this revision on (later ones install their own).
_TABLES = (
    "orgs", "org_sso", "memberships", "teams", "team_memberships", "resources", "emails",
    "sessions", "tokens", "sso_authentications",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "gate_changes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_changes")),
    )
    op.execute("INSERT INTO gate_changes (id, seq) VALUES (1, 0)")
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        change_triggers.create_function(connection)
    for table in _TABLES:
        change_triggers.install(connection, change_triggers.watch_of(table))


def downgrade() -> None:
    connection = op.get_bind()
    for table in _TABLES:
        change_triggers.uninstall(connection, table)
    if connection.dialect.name == "postgresql":
        change_triggers.drop_function(connection)
    op.drop_table("gate_changes")
