"""Status: components and their history, incidents and maintenance, subscriptions, links, the outbox.

Revision ID: 0003_status
Revises: 0002_support
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_status"
down_revision = "0002_support"
branch_labels = None
depends_on = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "status_components",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("group_name", sa.String(80), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "status_component_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("component_id", sa.Integer(), sa.ForeignKey("status_components.id"), nullable=False),
        sa.Column("old_status", sa.String(32), nullable=False),
        sa.Column("new_status", sa.String(32), nullable=False),
        _at("at"),
        sa.Column("actor_key", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_status_component_history_component_id", "status_component_history", ["component_id"])
    op.create_index("ix_status_component_history_at", "status_component_history", ["at"])
    op.create_table(
        "status_incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("impact", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("components", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("resolved_at", nullable=True),
        _at("starts_at", nullable=True),
        _at("ends_at", nullable=True),
    )
    op.create_index("ix_status_incidents_kind", "status_incidents", ["kind"])
    op.create_index("ix_status_incidents_status", "status_incidents", ["status"])
    op.create_index("ix_status_incidents_created_at", "status_incidents", ["created_at"])
    op.create_index("ix_status_incidents_resolved_at", "status_incidents", ["resolved_at"])
    op.create_table(
        "status_incident_updates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("status_incidents.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _at("at"),
        sa.Column("actor_key", sa.String(120), nullable=False),
    )
    op.create_index("ix_status_incident_updates_incident_id", "status_incident_updates", ["incident_id"])
    op.create_table(
        "status_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("is_direct", sa.Boolean(), nullable=False),
        sa.Column("components", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        _at("created_at"),
        sa.UniqueConstraint("platform", "workspace_id", "channel_id", name="uq_status_sub_where"),
    )
    op.create_index("ix_status_subscriptions_active", "status_subscriptions", ["active"])
    op.create_table(
        "status_incident_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("status_incidents.id"), nullable=False),
        sa.Column("conversation_key", sa.String(300), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("is_direct", sa.Boolean(), nullable=False),
        sa.Column("actor_key", sa.String(120), nullable=False),
        sa.Column("component", sa.String(80), nullable=False),
        _at("created_at"),
        _at("notified_at", nullable=True),
        sa.UniqueConstraint("incident_id", "conversation_key", name="uq_status_link"),
    )
    op.create_index("ix_status_incident_links_incident_id", "status_incident_links", ["incident_id"])
    op.create_table(
        "status_broadcasts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("status_incidents.id"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("finished_at", nullable=True),
        sa.Column("progress_platform", sa.String(16), nullable=False),
        sa.Column("progress_workspace_id", sa.String(64), nullable=False),
        sa.Column("progress_channel_id", sa.String(64), nullable=False),
        sa.Column("progress_message_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_status_broadcasts_incident_id", "status_broadcasts", ["incident_id"])
    op.create_table(
        "status_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), sa.ForeignKey("status_broadcasts.id"), nullable=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("status_subscriptions.id"), nullable=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("status_incidents.id"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lane", sa.String(100), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("is_direct", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_at", nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        _at("lease_until", nullable=True),
        sa.Column("sent_message_id", sa.String(64), nullable=False),
        _at("sent_at", nullable=True),
        sa.Column("error", sa.String(300), nullable=False),
        sa.UniqueConstraint("key", name="uq_status_outbox_key"),
    )
    op.create_index("ix_status_outbox_broadcast_id", "status_outbox", ["broadcast_id"])
    op.create_index("ix_status_outbox_claim", "status_outbox", ["lane", "state"])
    op.create_table(
        "status_incident_threads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("status_incidents.id"), nullable=False),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("status_subscriptions.id"), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.UniqueConstraint("incident_id", "subscription_id", name="uq_status_thread"),
    )
    op.create_table(
        "status_lanes",
        sa.Column("lane", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        _at("lease_until", nullable=True),
    )


def downgrade() -> None:
    for table in (
        "status_lanes",
        "status_incident_threads",
        "status_outbox",
        "status_broadcasts",
        "status_incident_links",
        "status_subscriptions",
        "status_incident_updates",
        "status_incidents",
        "status_component_history",
        "status_components",
    ):
        op.drop_table(table)
