"""The audit log: staff actions and refused attempts."""

from __future__ import annotations

from storage.models import AuditEntry
from storage.session import DbSession


async def record(
    session: DbSession, *, actor_key: str, action: str, allowed: bool, detail: str = ""
) -> AuditEntry:
    entry = AuditEntry(actor_key=actor_key, action=action, allowed=allowed, detail=detail[:2000])
    session.add(entry)
    await session.flush()
    return entry
