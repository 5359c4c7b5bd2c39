"""join link and invitations that can be shown again

The join link's key and each invitation's key are kept sealed (to show them to
admins again) beside their SHA-256 (to find them); an invitation remembers when
it was last mailed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_sso", schema=None) as batch_op:
        batch_op.add_column(sa.Column("join_key_sealed", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("join_rotated_at", hubgate.db.types.UtcDateTime(), nullable=True)
        )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("key_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("mailed_at", hubgate.db.types.UtcDateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_invitations_key_hash"), ["key_hash"])


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_invitations_key_hash"), type_="unique")
        batch_op.drop_column("mailed_at")
        batch_op.drop_column("key_sealed")
        batch_op.drop_column("key_hash")
    with op.batch_alter_table("org_sso", schema=None) as batch_op:
        batch_op.drop_column("join_rotated_at")
        batch_op.drop_column("join_key_sealed")
