"""identity integrity: a transactional mail outbox, role sources and pins

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Account and address ids are never reused: released or expired accounts
        # are deleted, and their ids stand in one-time links and the audit log.
        for table in ("users", "emails"):
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("html", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="pending")
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "next_attempt_at",
                hubgate.db.types.UtcDateTime(),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_until", hubgate.db.types.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("sent_at", hubgate.db.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.create_check_constraint("status", "status IN ('pending', 'sent', 'failed')")
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
    # The server defaults only fill the rows already there.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("status", server_default=None)
        batch_op.alter_column("attempts", server_default=None)
        batch_op.alter_column("next_attempt_at", server_default=None)

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role_detail", sa.String(length=256), nullable=True))
        batch_op.add_column(
            sa.Column("role_pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.alter_column("role_pinned", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("role_pinned")
        batch_op.drop_column("role_detail")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_constraint("status", type_="check")
        for column in (
            "last_error", "sent_at", "claimed_until", "claimed_by",
            "next_attempt_at", "attempts", "status", "html",
        ):  # fmt: skip
            batch_op.drop_column(column)
