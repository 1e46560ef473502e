"""An index for a team member's open tickets (`/tickets mine`), which read every ticket before.

Revision ID: 0010_tickets_by_assignee
Revises: 0009_close_rounds
"""

from __future__ import annotations

from alembic import op

revision = "0010_tickets_by_assignee"
down_revision = "0009_close_rounds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_assignee_state", "tickets", ["assignee_key", "state"])


def downgrade() -> None:
    op.drop_index("ix_tickets_assignee_state", table_name="tickets")
