"""A decision's outcome holds "picked:<article id>" whole: article ids are up to 64 characters, and
picks of longer ones were cut at 40, crediting an article that does not exist.

Revision ID: 0011_picked_outcome_whole
Revises: 0010_tickets_by_assignee
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_picked_outcome_whole"
down_revision = "0010_tickets_by_assignee"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Longer only: PostgreSQL changes the type in place, without rewriting the table.
    with op.batch_alter_table("kb_decisions") as table:
        table.alter_column(
            "outcome", type_=sa.String(80), existing_type=sa.String(40), existing_nullable=False
        )


def downgrade() -> None:
    # Outcomes past 40 characters cannot go back whole; they keep their first 40, as before 0011.
    op.execute("UPDATE kb_decisions SET outcome = substr(outcome, 1, 40) WHERE length(outcome) > 40")
    with op.batch_alter_table("kb_decisions") as table:
        table.alter_column(
            "outcome", type_=sa.String(40), existing_type=sa.String(80), existing_nullable=False
        )
