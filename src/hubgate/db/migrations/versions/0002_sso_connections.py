"""sso connections

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("sp_private_key", sa.Text(), nullable=False),
        sa.Column("sp_certificate", sa.Text(), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("verified_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('saml', 'oidc')", name=op.f("ck_sso_connections_kind")),
        sa.CheckConstraint(
            "state IN ('draft', 'verified', 'active', 'inactive')",
            name=op.f("ck_sso_connections_state"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_sso_connections_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_connections")),
    )
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_connections_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_connections_org_id"))

    op.drop_table("sso_connections")
