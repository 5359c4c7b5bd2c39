"""scim

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SOURCES = "{} IN ('manual', 'default', 'invitation', 'mapping'{})"


def upgrade() -> None:
    op.create_table(
        "scim_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("display_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_scim_groups_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_groups")),
        sa.UniqueConstraint(
            "org_id", "display_name_key", name=op.f("uq_scim_groups_org_id_display_name_key")
        ),
    )
    with op.batch_alter_table("scim_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scim_groups_org_id"), ["org_id"], unique=False)

    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("revoked_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("last_used_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_scim_tokens_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_scim_tokens_secret_hash")),
    )
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scim_tokens_org_id"), ["org_id"], unique=False)

    op.create_table(
        "scim_group_teams",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("team_role", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "team_role IN ('read', 'write', 'admin')", name=op.f("ck_scim_group_teams_team_role")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["scim_groups.id"],
            name=op.f("fk_scim_group_teams_group_id_scim_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_scim_group_teams_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "team_id", name=op.f("pk_scim_group_teams")),
    )
    with op.batch_alter_table("scim_group_teams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scim_group_teams_team_id"), ["team_id"], unique=False)

    op.create_table(
        "scim_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=False),
        sa.Column("user_name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("given_name", sa.String(length=128), nullable=True),
        sa.Column("family_name", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_scim_users_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_scim_users_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_users")),
        sa.UniqueConstraint("org_id", "user_id", name=op.f("uq_scim_users_org_id_user_id")),
        sa.UniqueConstraint(
            "org_id", "user_name_key", name=op.f("uq_scim_users_org_id_user_name_key")
        ),
    )
    with op.batch_alter_table("scim_users", schema=None) as batch_op:
        batch_op.create_index("ix_scim_users_org_external", ["org_id", "external_id"], unique=False)

    op.create_table(
        "scim_group_members",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("scim_user_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["scim_groups.id"],
            name=op.f("fk_scim_group_members_group_id_scim_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scim_user_id"],
            ["scim_users.id"],
            name=op.f("fk_scim_group_members_scim_user_id_scim_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "scim_user_id", name=op.f("pk_scim_group_members")),
    )
    with op.batch_alter_table("scim_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scim_group_members_scim_user_id"), ["scim_user_id"], unique=False
        )

    op.create_table(
        "scim_user_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scim_user_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("value_key", sa.String(length=254), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=True),
        sa.Column("primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scim_user_id"],
            ["scim_users.id"],
            name=op.f("fk_scim_user_emails_scim_user_id_scim_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_user_emails")),
    )
    with op.batch_alter_table("scim_user_emails", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scim_user_emails_scim_user_id"), ["scim_user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scim_user_emails_value_key"), ["value_key"], unique=False
        )
    _allow_scim_source(", 'scim'")


def _allow_scim_source(extra: str) -> None:
    """Memberships and team places may now come from SCIM (or, going down, not)."""
    for table, column in (("memberships", "role_source"), ("team_memberships", "source")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
            batch_op.create_check_constraint(column, sa.text(_SOURCES.format(column, extra)))


def downgrade() -> None:
    _allow_scim_source("")
    with op.batch_alter_table("scim_user_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_user_emails_value_key"))
        batch_op.drop_index(batch_op.f("ix_scim_user_emails_scim_user_id"))

    op.drop_table("scim_user_emails")
    with op.batch_alter_table("scim_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_group_members_scim_user_id"))

    op.drop_table("scim_group_members")
    with op.batch_alter_table("scim_users", schema=None) as batch_op:
        batch_op.drop_index("ix_scim_users_org_external")

    op.drop_table("scim_users")
    with op.batch_alter_table("scim_group_teams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_group_teams_team_id"))

    op.drop_table("scim_group_teams")
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_tokens_org_id"))

    op.drop_table("scim_tokens")
    with op.batch_alter_table("scim_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_groups_org_id"))

    op.drop_table("scim_groups")
