"""The sqlmodel tables. Migrations in `storage/migrations` create them; keep both in step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def created_at(*, index: bool = False) -> datetime:
    """A required UTC timestamp that defaults to now."""
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=index))


def optional_at(*, index: bool = False) -> datetime | None:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=index))


class ProcessedEvent(SQLModel, table=True):
    """An inbound event already handled; the unique key makes retries and racing processes no-ops."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "event_id", name="uq_processed_events_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_id: str = Field(max_length=200)
    handled_at: datetime = created_at(index=True)


class AuditEntry(SQLModel, table=True):
    """Who tried what, and whether they were allowed: staff actions and refusals."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at(index=True)
    actor_key: str = Field(max_length=120, index=True)
    action: str = Field(max_length=80)
    allowed: bool
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Counter(SQLModel, table=True):
    """Named counters incremented atomically (ticket numbers)."""

    __tablename__ = "counters"

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0
