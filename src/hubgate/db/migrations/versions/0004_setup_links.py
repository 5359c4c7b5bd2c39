"""setup links

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setup_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("ended_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("ended_why", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_setup_links_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setup_links")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_setup_links_key_hash")),
    )
    with op.batch_alter_table("setup_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_setup_links_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("setup_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_setup_links_org_id"))

    op.drop_table("setup_links")
