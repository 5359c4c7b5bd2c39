"""audit streams and their delivery queue

Destinations the audit log is streamed to (webhooks, syslog servers), and the
events each has still to take, queued in the transaction of the event.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_streams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("failing_since", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_delivered_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('webhook', 'syslog')", name=op.f("ck_audit_streams_kind")),
        sa.CheckConstraint(
            "origin IN ('settings', 'operator', 'admin')", name=op.f("ck_audit_streams_origin")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_audit_streams_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_streams")),
    )
    with op.batch_alter_table("audit_streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_streams_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "uq_audit_streams_setting", ["kind"], unique=True,
            sqlite_where=sa.text("origin = 'settings'"),
            postgresql_where=sa.text("origin = 'settings'"),
        )  # fmt: skip
    op.create_table(
        "audit_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["audit_streams.id"],
            name=op.f("fk_audit_deliveries_stream_id_audit_streams"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_deliveries")),
    )
    with op.batch_alter_table("audit_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_deliveries_stream", ["stream_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_deliveries_stream")
    op.drop_table("audit_deliveries")
    with op.batch_alter_table("audit_streams", schema=None) as batch_op:
        batch_op.drop_index("uq_audit_streams_setting")
        batch_op.drop_index(batch_op.f("ix_audit_streams_org_id"))
    op.drop_table("audit_streams")
