"""The files a question was asked with, so that a ticket opened later from the bot's answer ("I
still need help") brings them to the team as the question itself would have.

Revision ID: 0015_decision_files
Revises: 0014_ticket_first_message
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_decision_files"
down_revision = "0014_ticket_first_message"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: PostgreSQL adds it without rewriting the table, and questions
    # asked before it open their tickets with the words alone, as they did.
    op.add_column("kb_decisions", sa.Column("files", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not batch mode, as 0014: SQLite drops a plain column in place.
    op.drop_column("kb_decisions", "files")
