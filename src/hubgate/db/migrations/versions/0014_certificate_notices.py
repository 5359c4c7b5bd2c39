"""certificate expiry notices

One row per connection, IdP certificate (SHA-256 fingerprint) and threshold
(30 days, 7 days, expired) whose warning the org's admins were sent; the primary
key lets one instance alone send each.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_certificate_notices",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.String(length=16), nullable=False),
        sa.Column("not_after", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("sent_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_sso_certificate_notices_connection_id_sso_connections"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint(
            "connection_id", "fingerprint", "threshold", name=op.f("pk_sso_certificate_notices")
        ),
    )


def downgrade() -> None:
    op.drop_table("sso_certificate_notices")
