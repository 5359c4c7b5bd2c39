"""the metadata change an admin rejected, so refreshes stop proposing it

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("saml_metadata_sources") as batch:
        batch.add_column(sa.Column("rejected_entity_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rejected_sso_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("saml_metadata_sources") as batch:
        batch.drop_column("rejected_sso_url")
        batch.drop_column("rejected_entity_id")
