"""audit events by org, action and time

The sign-in health charts (hubgate.sso.health) count one org's ``sso.login`` and
``sso.login_refused`` events in the last 48 hours or 30 days. Without this index
the database reads every org's events of the window (index on ``at``) or every
event of the org (``org_id, id``); with it, only the rows it counts.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_org_action_at", "audit_events", ["org_id", "action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_org_action_at", table_name="audit_events")
