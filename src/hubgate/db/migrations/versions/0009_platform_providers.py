"""platform sign-in providers for own accounts

Hub-wide OpenID Providers and GitHub that people sign in to their own accounts with, and
the (provider, subject) -> account links they make.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('oidc', 'github')", name=op.f("ck_platform_providers_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_providers")),
    )
    op.create_table(
        "platform_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("last_sign_in_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["platform_providers.id"],
            name=op.f("fk_platform_links_provider_id_platform_providers"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_platform_links_user_id_users"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_links")),
        sa.UniqueConstraint(
            "provider_id", "subject", name=op.f("uq_platform_links_provider_id_subject")
        ),
    )
    with op.batch_alter_table("platform_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_links_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("platform_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_links_user_id"))
    op.drop_table("platform_links")
    op.drop_table("platform_providers")
