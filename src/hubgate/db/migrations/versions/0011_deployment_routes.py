"""deployment routes: a deployment bound to a host and/or a path prefix

OpenAI-compatible model servers (vLLM, TGI, SGLang) serve their own ``/v1/...``
paths; a row here says which deployment a host, a path prefix or both lead to,
so forward-auth can gate them without rewriting (hubgate.gate.routes).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hubgate.db.types
from hubgate.db import change_triggers

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("path_prefix", sa.String(length=256), nullable=True),
        sa.Column("created_at", hubgate.db.types.UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "host IS NOT NULL OR path_prefix IS NOT NULL",
            name=op.f("ck_deployment_routes_host_or_prefix"),
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_deployment_routes_resource_id_resources"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_routes")),
        sa.UniqueConstraint(
            "host", "path_prefix", name=op.f("uq_deployment_routes_host_path_prefix")
        ),
    )
    with op.batch_alter_table("deployment_routes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployment_routes_resource_id"), ["resource_id"], unique=False
        )
        batch_op.create_index(
            "uq_deployment_routes_host_only",
            ["host"],
            unique=True,
            sqlite_where=sa.text("path_prefix IS NULL"),
            postgresql_where=sa.text("path_prefix IS NULL"),
        )
        batch_op.create_index(
            "uq_deployment_routes_prefix_only",
            ["path_prefix"],
            unique=True,
            sqlite_where=sa.text("host IS NULL"),
            postgresql_where=sa.text("host IS NULL"),
        )
    # Bindings decide which deployment a request is checked against: each change
    # moves the gate's change sequence, as for the tables of 0010.
    change_triggers.install(op.get_bind(), change_triggers.watch_of("deployment_routes"))


def downgrade() -> None:
    change_triggers.uninstall(op.get_bind(), "deployment_routes")
    with op.batch_alter_table("deployment_routes", schema=None) as batch_op:
        batch_op.drop_index("uq_deployment_routes_prefix_only")
        batch_op.drop_index("uq_deployment_routes_host_only")
        batch_op.drop_index(batch_op.f("ix_deployment_routes_resource_id"))
    op.drop_table("deployment_routes")
