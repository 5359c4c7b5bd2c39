"""single logout: how the IdP names each SSO authentication

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("idp_subject", sa.String(length=1024)),
    ("idp_subject_format", sa.String(length=256)),
    ("idp_name_qualifier", sa.String(length=256)),
    ("idp_sp_name_qualifier", sa.String(length=256)),
    ("idp_session", sa.String(length=256)),
    ("id_token", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("sso_authentications", schema=None) as batch_op:
        for name, type_ in _COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_index(
            "ix_sso_authentications_idp_subject", ["connection_id", "idp_subject"], unique=False
        )
        batch_op.create_index(
            "ix_sso_authentications_idp_session", ["connection_id", "idp_session"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sso_authentications", schema=None) as batch_op:
        batch_op.drop_index("ix_sso_authentications_idp_session")
        batch_op.drop_index("ix_sso_authentications_idp_subject")
        for name, _type in reversed(_COLUMNS):
            batch_op.drop_column(name)
