"""Discord gateway sessions, per shard, for the next process to RESUME after a crash.

Revision ID: 0005_discord_gateway_sessions
Revises: 0004_decisions_by_staff
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_discord_gateway_sessions"
down_revision = "0004_decisions_by_staff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discord_gateway_sessions",
        sa.Column("shard_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("resume_url", sa.String(500), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("discord_gateway_sessions")
