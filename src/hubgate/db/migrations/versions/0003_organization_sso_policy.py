"""organization sso policy

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SOURCES = "{} IN ('manual', 'default', 'invitation', 'mapping')"


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("teams", sa.Text(), nullable=False),
        sa.Column("invited_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "role IN ('read', 'contributor', 'write', 'admin')", name=op.f("ck_invitations_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_invitations_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_invitations_org_id_email")),
    )
    op.create_table(
        "role_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("attribute", sa.String(length=256), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "role IN ('read', 'contributor', 'write', 'admin')", name=op.f("ck_role_mappings_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_role_mappings_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_mappings")),
        sa.UniqueConstraint(
            "org_id", "attribute", "value", name=op.f("uq_role_mappings_org_id_attribute_value")
        ),
    )
    with op.batch_alter_table("role_mappings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_mappings_org_id"), ["org_id"], unique=False)

    op.create_table(
        "org_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("verification_token", sa.String(length=64), nullable=False),
        sa.Column("verified_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("verified_by", sa.String(length=16), nullable=True),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_org_domains_connection_id_sso_connections"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_org_domains_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_domains")),
        sa.UniqueConstraint("org_id", "domain", name=op.f("uq_org_domains_org_id_domain")),
    )
    with op.batch_alter_table("org_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_domains_domain"), ["domain"], unique=False)
        batch_op.create_index(
            "uq_org_domains_verified",
            ["domain"],
            unique=True,
            sqlite_where=sa.text("verified_at IS NOT NULL"),
            postgresql_where=sa.text("verified_at IS NOT NULL"),
        )

    op.create_table(
        "org_sso",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("optional", sa.Boolean(), nullable=False),
        sa.Column("enforced", sa.Boolean(), nullable=False),
        sa.Column("session_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("default_role", sa.String(length=16), nullable=False),
        sa.Column("default_team_id", sa.Integer(), nullable=True),
        sa.Column("join_key_hash", sa.String(length=64), nullable=True),
        sa.Column("join_expires_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.Column("updated_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "default_role IN ('read', 'contributor', 'write', 'admin')",
            name=op.f("ck_org_sso_default_role"),
        ),
        sa.CheckConstraint("mode IN ('off', 'basic', 'managed')", name=op.f("ck_org_sso_mode")),
        sa.CheckConstraint(
            "session_timeout_seconds BETWEEN 3600 AND 7776000",
            name=op.f("ck_org_sso_session_timeout"),
        ),
        sa.ForeignKeyConstraint(
            ["default_team_id"],
            ["teams.id"],
            name=op.f("fk_org_sso_default_team_id_teams"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_org_sso_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_sso")),
        sa.UniqueConstraint("join_key_hash", name=op.f("uq_org_sso_join_key_hash")),
    )
    op.create_table(
        "sso_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("last_sign_in_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_sso_links_connection_id_sso_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sso_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_links")),
        sa.UniqueConstraint(
            "connection_id", "subject", name=op.f("uq_sso_links_connection_id_subject")
        ),
    )
    with op.batch_alter_table("sso_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_links_user_id"), ["user_id"], unique=False)

    op.create_table(
        "team_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("attribute", sa.String(length=256), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("team_role", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "team_role IN ('read', 'write', 'admin')", name=op.f("ck_team_mappings_team_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_team_mappings_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_mappings_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_mappings")),
        sa.UniqueConstraint(
            "org_id",
            "attribute",
            "value",
            "team_id",
            name=op.f("uq_team_mappings_org_id_attribute_value_team_id"),
        ),
    )
    with op.batch_alter_table("team_mappings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_mappings_org_id"), ["org_id"], unique=False)

    op.create_table(
        "sso_authentications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("authenticated_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.Column("idp_expires_at", hubgate.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_sso_authentications_connection_id_sso_connections"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_sso_authentications_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_sso_authentications_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sso_authentications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_authentications")),
        sa.UniqueConstraint(
            "session_id", "org_id", name=op.f("uq_sso_authentications_session_id_org_id")
        ),
    )
    with op.batch_alter_table("sso_authentications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sso_authentications_user_org", ["user_id", "org_id"], unique=False
        )

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role_source", sa.String(length=16), nullable=False, server_default="manual")
        )
        batch_op.add_column(sa.Column("invited_role", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column(
                "external_collaborator", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("deactivated_at", hubgate.db.types.UtcDateTime(), nullable=True)
        )
        batch_op.create_check_constraint("role_source", sa.text(_SOURCES.format("role_source")))

    with op.batch_alter_table("team_memberships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="manual")
        )
        batch_op.create_check_constraint("source", sa.text(_SOURCES.format("source")))


def downgrade() -> None:
    with op.batch_alter_table("team_memberships", schema=None) as batch_op:
        batch_op.drop_column("source")

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
        batch_op.drop_column("external_collaborator")
        batch_op.drop_column("invited_role")
        batch_op.drop_column("role_source")

    with op.batch_alter_table("sso_authentications", schema=None) as batch_op:
        batch_op.drop_index("ix_sso_authentications_user_org")

    op.drop_table("sso_authentications")
    with op.batch_alter_table("team_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_mappings_org_id"))

    op.drop_table("team_mappings")
    with op.batch_alter_table("sso_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_links_user_id"))

    op.drop_table("sso_links")
    op.drop_table("org_sso")
    with op.batch_alter_table("org_domains", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_org_domains_verified",
            sqlite_where=sa.text("verified_at IS NOT NULL"),
            postgresql_where=sa.text("verified_at IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_org_domains_domain"))

    op.drop_table("org_domains")
    with op.batch_alter_table("role_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_mappings_org_id"))

    op.drop_table("role_mappings")
    op.drop_table("invitations")
