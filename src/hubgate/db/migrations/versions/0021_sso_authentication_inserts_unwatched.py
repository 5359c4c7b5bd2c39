"""a new SSO authentication no longer bumps the change sequence

Forward-auth never keeps the only answer such an insert can change (an
``sso_required`` refusal), so sign-ins stop emptying every instance's decision
cache. Updates and deletes of SSO authentications still bump it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

from hubgate.db import change_triggers

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    change_triggers.install(op.get_bind(), change_triggers.watch_of("sso_authentications"))


def downgrade() -> None:
    connection = op.get_bind()
    postgresql = connection.dialect.name == "postgresql"
    body = (
        "FOR EACH STATEMENT EXECUTE FUNCTION hubgate_gate_bump()"
        if postgresql
        else "BEGIN UPDATE gate_changes SET seq = seq + 1 WHERE id = 1; END"
    )
    op.execute(
        f'CREATE TRIGGER "gate_bump_sso_authentications_insert" '
        f'AFTER INSERT ON "sso_authentications" {body}'
    )
