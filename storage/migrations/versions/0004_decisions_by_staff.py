"""Decisions remember whether staff asked, so insights count customers' questions only.

Revision ID: 0004_decisions_by_staff
Revises: 0003_status
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_decisions_by_staff"
down_revision = "0003_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kb_decisions") as batch:
        batch.add_column(sa.Column("by_staff", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("kb_decisions") as batch:
        batch.drop_column("by_staff")
