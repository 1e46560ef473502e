"""Support conversation: tickets, transcripts, knowledge-base decisions.

Revision ID: 0002_support
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_support"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.Integer(), nullable=False, unique=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("priority", sa.String(12), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("requester_key", sa.String(120), nullable=False),
        sa.Column("requester_name", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("is_direct", sa.Boolean(), nullable=False),
        sa.Column("conversation_key", sa.String(240), nullable=False),
        sa.Column("staff_platform", sa.String(16), nullable=True),
        sa.Column("staff_channel_id", sa.String(64), nullable=True),
        sa.Column("staff_thread_id", sa.String(64), nullable=True),
        sa.Column("assignee_key", sa.String(120), nullable=True),
        sa.Column("assignee_name", sa.String(200), nullable=True),
        sa.Column("component", sa.String(80), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("first_response_due"),
        _at("first_responded_at", nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        _at("close_requested_at", nullable=True),
        sa.Column("close_reason", sa.String(500), nullable=True),
        _at("closed_at", nullable=True),
        sa.Column("closed_how", sa.String(24), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
    )
    op.create_index("ix_tickets_state", "tickets", ["state"])
    op.create_index("ix_tickets_requester_key", "tickets", ["requester_key"])
    op.create_index("ix_tickets_conversation_key", "tickets", ["conversation_key"])
    op.create_index(
        "ix_tickets_staff_thread", "tickets", ["staff_platform", "staff_channel_id", "staff_thread_id"]
    )
    op.create_index("ix_tickets_state_due", "tickets", ["state", "first_response_due"])
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        _at("at"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author_key", sa.String(120), nullable=False),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_ticket_messages_ticket_id", "ticket_messages", ["ticket_id"])
    op.create_table(
        "kb_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        _at("at"),
        sa.Column("actor_key", sa.String(120), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("conversation_key", sa.String(240), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("candidates", sa.Text(), nullable=False),
        sa.Column("top_entry_id", sa.String(120), nullable=True),
        sa.Column("top_confidence", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_kb_decisions_at", "kb_decisions", ["at"])
    op.create_index("ix_kb_decisions_actor_key", "kb_decisions", ["actor_key"])
    op.create_index("ix_kb_decisions_top_entry_id", "kb_decisions", ["top_entry_id"])


def downgrade() -> None:
    op.drop_table("kb_decisions")
    op.drop_table("ticket_messages")
    op.drop_table("tickets")
