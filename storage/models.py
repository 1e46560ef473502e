"""The sqlmodel tables. Migrations in `storage/migrations` create them; keep both in step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def utc_column(*, index: bool = False) -> datetime:
    """A required UTC timestamp that defaults to now."""
    field: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=index)
    )
    return field


def optional_utc_column(*, index: bool = False) -> datetime | None:
    field: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=index))
    return field


class ProcessedEvent(SQLModel, table=True):
    """An inbound event already handled; the unique key makes retries and racing processes no-ops."""

    __tablename__ = "processed_events"
    __table_args__ = (
        UniqueConstraint("platform", "event_id", name="uq_processed_events_key"),
        Index(
            "ix_processed_events_owed",
            "owed_until",
            postgresql_where=text("owed_until IS NOT NULL"),
            sqlite_where=text("owed_until IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_id: str = Field(max_length=200)
    handled_at: datetime = utc_column(index=True)
    # The event's replies while they are not all posted (bot/core/owed.py), and until when the
    # process that handled it has to post them before another one does.
    owed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    owed_until: datetime | None = optional_utc_column()
    # What the event left for after its commit that must not be lost with its process (a write to
    # learned.yml), until it is done: owed until `owed_until` too (bot/core/owed.py).
    work: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AuditEntry(SQLModel, table=True):
    """Who tried what, and whether they were allowed: staff actions and refusals."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(index=True)
    actor_key: str = Field(max_length=120, index=True)
    action: str = Field(max_length=80)
    allowed: bool
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Counter(SQLModel, table=True):
    """Named counters incremented atomically (ticket numbers)."""

    __tablename__ = "counters"

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0


# --- Support conversation: tickets, transcripts, knowledge-base decisions ----------------------


class Ticket(SQLModel, table=True):
    """A customer's request that a person handles, from opening to a confirmed close."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_staff_thread", "staff_platform", "staff_channel_id", "staff_thread_id"),
        Index("ix_tickets_state_due", "state", "first_response_due"),
        # `/tickets mine`: a team member's open tickets, without reading every ticket ever opened.
        Index("ix_tickets_assignee_state", "assignee_key", "state"),
        # A 🎫 on the message a ticket was opened from, found after the ticket moved to a thread.
        Index("ix_tickets_first_message", "platform", "channel_id", "first_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    state: str = Field(default="open", max_length=24, index=True)
    priority: str = Field(default="normal", max_length=12)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(default="requested", max_length=40)
    requester_key: str = Field(max_length=120, index=True)
    requester_name: str = Field(default="", max_length=200)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(default="", max_length=64)
    channel_id: str = Field(max_length=64)
    thread_id: str | None = Field(default=None, max_length=64)
    # The message in `channel_id` it was opened from (asked there, or flagged with 🎫), where the
    # ticket lives in a thread of its own that is not that message's (a Discord private thread).
    first_message_id: str | None = Field(default=None, max_length=64)
    is_direct: bool = False
    conversation_key: str = Field(max_length=240, index=True)
    staff_platform: str | None = Field(default=None, max_length=16)
    staff_channel_id: str | None = Field(default=None, max_length=64)
    staff_thread_id: str | None = Field(default=None, max_length=64)
    # When a staff card was last decided on (posted with the event's commit) and its thread not noted
    # yet: `set_staff_thread` clears it. A reply under a post of the bot's that matches no ticket is
    # waited on only while some card is on its way (bot/handlers/tickets.py, `CARD_NOTED_WITHIN`).
    staff_card_queued_at: datetime | None = optional_utc_column(index=True)
    assignee_key: str | None = Field(default=None, max_length=120)
    assignee_name: str | None = Field(default=None, max_length=200)
    component: str | None = Field(default=None, max_length=80)
    decision_id: int | None = Field(default=None)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    first_response_due: datetime = utc_column()
    first_responded_at: datetime | None = optional_utc_column()
    breached: bool = False
    close_requested_at: datetime | None = optional_utc_column()
    # How many times the team has asked "Did this solve it?"; the answer buttons carry it, so a
    # click on an earlier question's button can neither close nor reopen the ticket.
    close_round: int = 0
    close_reason: str | None = Field(default=None, max_length=500)
    closed_at: datetime | None = optional_utc_column()
    closed_how: str | None = Field(default=None, max_length=24)
    rating: int | None = None


class TicketMessage(SQLModel, table=True):
    """One line of a ticket's transcript: what the customer, staff and bot said, and internal notes."""

    __tablename__ = "ticket_messages"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    at: datetime = utc_column()
    kind: str = Field(max_length=16)  # customer, staff, note, bot, system
    author_key: str = Field(default="", max_length=120)
    author_name: str = Field(default="", max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))


class KBDecision(SQLModel, table=True):
    """What a customer asked and what the bot decided, so staff can see it and fix the docs."""

    __tablename__ = "kb_decisions"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(index=True)
    actor_key: str = Field(max_length=120, index=True)
    platform: str = Field(max_length=16)
    conversation_key: str = Field(max_length=240)
    question: str = Field(sa_column=Column(Text, nullable=False))
    band: str = Field(max_length=16)
    candidates: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    top_entry_id: str | None = Field(default=None, max_length=120, index=True)
    top_confidence: float = 0.0
    # "picked:<article id>" after a "did you mean" pick: article ids are at most 64 characters.
    outcome: str = Field(default="pending", max_length=80)
    reason: str | None = Field(default=None, max_length=40)
    ticket_id: int | None = Field(default=None)
    # Staff try the bot too; their questions are kept but not counted as customers' (insights).
    by_staff: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # The files asked with (JSON, see bot/core/relayed_files.py): a ticket opened later, from a
    # button under the answer, fetches them then. None when there were none.
    files: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


# ---------------------------------------------------------------------------------------------
# Status: components, incidents, maintenance, subscriptions and the broadcast outbox (0003_status)


class StatusComponent(SQLModel, table=True):
    """A part of the product whose health customers ask about, in Statuspage's vocabulary."""

    __tablename__ = "status_components"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    aliases: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    group_name: str = Field(default="", max_length=80)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="operational", max_length=32)
    position: int = 0
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class ComponentStatusChange(SQLModel, table=True):
    """History of a component's status: who or what changed it, and when."""

    __tablename__ = "status_component_history"

    id: int | None = Field(default=None, primary_key=True)
    component_id: int = Field(foreign_key="status_components.id", index=True)
    old_status: str = Field(max_length=32)
    new_status: str = Field(max_length=32)
    at: datetime = utc_column(index=True)
    actor_key: str = Field(default="", max_length=120)
    reason: str = Field(default="", max_length=200)


class Incident(SQLModel, table=True):
    """An incident (or, with kind='maintenance', a scheduled maintenance window)."""

    __tablename__ = "status_incidents"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="incident", max_length=16, index=True)
    title: str = Field(max_length=200)
    impact: str = Field(default="none", max_length=16)
    status: str = Field(max_length=16, index=True)
    components: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(default="", max_length=120)
    created_at: datetime = utc_column(index=True)
    updated_at: datetime = utc_column()
    resolved_at: datetime | None = optional_utc_column(index=True)
    starts_at: datetime | None = optional_utc_column()
    ends_at: datetime | None = optional_utc_column()
    # What happened and what changes, published once it is resolved (0012_incident_postmortem).
    postmortem_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    postmortem_published_at: datetime | None = optional_utc_column()


class IncidentUpdate(SQLModel, table=True):
    """One entry of an incident's timeline."""

    __tablename__ = "status_incident_updates"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="status_incidents.id", index=True)
    status: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = utc_column()
    actor_key: str = Field(default="", max_length=120)


class StatusSubscription(SQLModel, table=True):
    """A channel or DM that receives broadcasts; `components` empty means every component."""

    __tablename__ = "status_subscriptions"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "channel_id", name="uq_status_sub_where"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(default="", max_length=64)
    channel_id: str = Field(max_length=64)
    is_direct: bool = False
    components: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    active: bool = Field(default=True, index=True)
    disabled_reason: str = Field(default="", max_length=200)
    created_by: str = Field(default="", max_length=120)
    created_at: datetime = utc_column()


class IncidentLink(SQLModel, table=True):
    """A customer who asked about an incident's component, told again when it resolves."""

    __tablename__ = "status_incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "conversation_key", name="uq_status_link"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="status_incidents.id", index=True)
    conversation_key: str = Field(max_length=300)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(default="", max_length=64)
    channel_id: str = Field(max_length=64)
    thread_id: str | None = Field(default=None, max_length=64)
    is_direct: bool = False
    actor_key: str = Field(max_length=120)
    component: str = Field(default="", max_length=80)
    created_at: datetime = utc_column()
    notified_at: datetime | None = optional_utc_column()


class Broadcast(SQLModel, table=True):
    """One fan-out (incident opened/updated/resolved, an announcement) and where its progress shows."""

    __tablename__ = "status_broadcasts"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="status_incidents.id", index=True)
    kind: str = Field(max_length=16)
    total: int = 0
    created_at: datetime = utc_column()
    finished_at: datetime | None = optional_utc_column()
    progress_platform: str = Field(default="", max_length=16)
    progress_workspace_id: str = Field(default="", max_length=64)
    progress_channel_id: str = Field(default="", max_length=64)
    progress_message_id: str = Field(default="", max_length=64)


class OutboxDelivery(SQLModel, table=True):
    """One message to send, written in the same transaction as the change it announces.

    state: pending -> sending (claimed, lease until `lease_until`) -> sent | failed | skipped.
    A `sending` row whose lease expired belongs to a process that died; it is claimed again and sent
    with the same `key`, which the platform (Discord nonce) or the adapter uses to avoid a duplicate.
    """

    __tablename__ = "status_outbox"
    __table_args__ = (
        UniqueConstraint("key", name="uq_status_outbox_key"),
        Index("ix_status_outbox_claim", "lane", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80)
    broadcast_id: int | None = Field(default=None, foreign_key="status_broadcasts.id", index=True)
    subscription_id: int | None = Field(default=None, foreign_key="status_subscriptions.id")
    incident_id: int | None = Field(default=None, foreign_key="status_incidents.id")
    kind: str = Field(max_length=16)
    lane: str = Field(max_length=100)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(default="", max_length=64)
    channel_id: str = Field(max_length=64)
    thread_id: str | None = Field(default=None, max_length=64)
    is_direct: bool = False
    title: str = Field(default="", max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_at: datetime | None = optional_utc_column()
    lease_owner: str = Field(default="", max_length=64)
    lease_until: datetime | None = optional_utc_column()
    sent_message_id: str = Field(default="", max_length=64)
    sent_at: datetime | None = optional_utc_column()
    error: str = Field(default="", max_length=300)


class IncidentThread(SQLModel, table=True):
    """Where an incident's first notice landed in a subscribed channel: updates thread under it."""

    __tablename__ = "status_incident_threads"
    __table_args__ = (UniqueConstraint("incident_id", "subscription_id", name="uq_status_thread"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="status_incidents.id")
    subscription_id: int = Field(foreign_key="status_subscriptions.id")
    message_id: str = Field(max_length=64)


class BroadcastLane(SQLModel, table=True):
    """Which process paces a rate-limit lane (Discord's global bucket, one Slack workspace) now."""

    __tablename__ = "status_lanes"

    lane: str = Field(primary_key=True, max_length=100)
    owner: str = Field(default="", max_length=64)
    lease_until: datetime | None = optional_utc_column()


class DiscordGatewaySession(SQLModel, table=True):
    """A Discord gateway session this bot's process had open, per shard: what a RESUME needs (never
    the token), so the next process can collect what Discord dispatched to it after a crash."""

    __tablename__ = "discord_gateway_sessions"

    shard_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    session_id: str = Field(max_length=128)
    resume_url: str = Field(max_length=500)
    sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
    """The highest sequence number up to which every dispatch was settled (see the Discord adapter)."""
    owner: str = Field(default="", max_length=64)
    """The process that keeps the row (a random token of its adapter), "" once handed over at a stop."""
    updated_at: datetime = utc_column()
    """The owner's last save: a row it stopped refreshing belongs to a process that died."""


class InboxEntry(SQLModel, table=True):
    """A platform request written before it was acknowledged, until the dispatcher has settled its
    event: what a restarted (or another) process replays when the one that took it died."""

    __tablename__ = "inbox"

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    person: str = Field(default="", max_length=120, index=True)
    """The actor key of who sent it, so a privacy erasure finds the row."""
    body: str = Field(sa_column=Column(Text, nullable=False))
    """The request as the platform sent it (JSON): what translating it again needs."""
    received_at: datetime = utc_column(index=True)
    lease_until: datetime = utc_column(index=True)
    """Replayable once past: until then the process that took the request is handling it."""
    attempts: int = 0
