"""Discord gateway sessions get an owner: the process that keeps each row, so two processes on one
shard do not store over each other and a starting one does not resume a live one's session.

Revision ID: 0008_gateway_session_owner
Revises: 0007_owed_replies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_gateway_session_owner"
down_revision = "0007_owed_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "" is a row handed over: one stored before owners existed is the next process's to resume.
    with op.batch_alter_table("discord_gateway_sessions") as table:
        table.add_column(sa.Column("owner", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("discord_gateway_sessions") as table:
        table.drop_column("owner")
