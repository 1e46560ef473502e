"""The sqlmodel tables. Migrations in `storage/migrations` create them; keep both in step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def utc_column(*, index: bool = False) -> datetime:
    """A required UTC timestamp that defaults to now."""
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=index))


def optional_utc_column(*, index: bool = False) -> datetime | None:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=index))


class ProcessedEvent(SQLModel, table=True):
    """An inbound event already handled; the unique key makes retries and racing processes no-ops."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "event_id", name="uq_processed_events_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_id: str = Field(max_length=200)
    handled_at: datetime = utc_column(index=True)


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
    is_direct: bool = False
    conversation_key: str = Field(max_length=240, index=True)
    staff_platform: str | None = Field(default=None, max_length=16)
    staff_channel_id: str | None = Field(default=None, max_length=64)
    staff_thread_id: str | None = Field(default=None, max_length=64)
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
    outcome: str = Field(default="pending", max_length=40)
    reason: str | None = Field(default=None, max_length=40)
    ticket_id: int | None = Field(default=None)
