"""SAML metadata that refreshes itself

Where each SAML connection made from a metadata URL re-reads it, the validators of
the last read, the refresh lease and an entity id or SSO URL change awaiting an
admin.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saml_metadata_sources",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=256), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("next_due_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("last_attempt_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("last_result", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("failing_since", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("lease_until", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("pending_entity_id", sa.Text(), nullable=True),
        sa.Column("pending_sso_url", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "last_result IN ('unchanged', 'changed', 'failed')",
            name=op.f("ck_saml_metadata_sources_last_result"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_saml_metadata_sources_connection_id_sso_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_saml_metadata_sources")),
    )
    with op.batch_alter_table("saml_metadata_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saml_metadata_sources_next_due_at"), ["next_due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("saml_metadata_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saml_metadata_sources_next_due_at"))
    op.drop_table("saml_metadata_sources")
