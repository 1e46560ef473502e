"""Generated support traffic for report tests: many decisions and tickets, inserted in bulk."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from sqlalchemy import insert, text

from storage.db import Database
from storage.models import Counter, KBDecision, Ticket, TicketMessage

ARTICLES = ("export-failed", "reset-api-key", "invoice-download", "sso-setup", "webhook-retries")
UNKNOWN_TOPICS = (
    "do you sponsor football clubs",
    "can I pay with bitcoin",
    "is there a dark mode for the dashboard",
    "how do I export my data to sap",
)
PLATFORMS = ("slack", "discord")
CUSTOMER_NAMES = ("Casey Customer", "Robin Requester", "Alex Asker")


def customer_key(index: int) -> str:
    return f"{PLATFORMS[index % 2]}:UCUST{index:05d}"


async def generate(
    database: Database, *, decisions: int, now: datetime, days: int = 7, seed: int = 7
) -> None:
    """`decisions` customers' questions over the `days` before `now` (answered, clarified, escalated,
    with outcomes), a ticket for each escalation (staff replies to most, some closed and rated)."""
    rng = random.Random(seed)
    decision_rows = []
    ticket_rows = []
    message_rows = []
    span = days * 86400
    for i in range(decisions):
        at = now - timedelta(seconds=rng.uniform(1, span))
        person = rng.randrange(max(decisions // 5, 2))
        platform = PLATFORMS[person % 2]
        roll = rng.random()
        article = rng.choice(ARTICLES)
        if roll < 0.6:
            band, outcome = "answer", rng.choice(("answered", "answered", "solved", "still_need_help"))
            question = f"how do I fix {article.replace('-', ' ')} number {i}"
        elif roll < 0.75:
            band = "clarify"
            outcome = rng.choice(("clarifying", f"picked:{article}", "none_of_these", "solved"))
            question = f"something about {article.replace('-', ' ')}?"
        else:
            band, outcome = "escalate", "escalated"
            question = f"{rng.choice(UNKNOWN_TOPICS)} please ({i})"
        decision_id = i + 1
        escalated = outcome in ("escalated", "still_need_help", "none_of_these")
        ticket_id = len(ticket_rows) + 1 if escalated else None
        decision_rows.append(
            {
                "id": decision_id,
                "at": at,
                "actor_key": customer_key(person),
                "platform": platform,
                "conversation_key": f"{platform}:W1:C{person % 50}",
                "question": question,
                "band": band,
                "candidates": json.dumps([[article, 0.9]]),
                "top_entry_id": None if band == "escalate" else article,
                "top_confidence": 0.9,
                "outcome": outcome,
                "reason": {"still_need_help": "still_need_help", "none_of_these": "clarify_declined"}.get(
                    outcome, "low_confidence" if escalated else None
                ),
                "ticket_id": ticket_id,
                "by_staff": False,
            }
        )
        if ticket_id is None:
            continue
        opened = at + timedelta(seconds=5)
        priority = rng.choice(("urgent", "high", "normal", "normal", "low"))
        closed = rng.random() < 0.6
        closed_at = opened + timedelta(hours=rng.uniform(0.2, 30)) if closed else None
        ticket_rows.append(
            {
                "id": ticket_id,
                "number": ticket_id,
                "state": "closed" if closed else "claimed",
                "priority": priority,
                "summary": question,
                "reason": decision_rows[-1]["reason"],
                "requester_key": customer_key(person),
                "requester_name": rng.choice(CUSTOMER_NAMES),
                "platform": platform,
                "workspace_id": "W1",
                "channel_id": f"C{person % 50}",
                "is_direct": False,
                "conversation_key": f"{platform}:W1:C{person % 50}:{i}",
                "created_at": opened,
                "updated_at": opened,
                "first_response_due": opened + timedelta(minutes=240),
                "breached": False,
                "closed_at": closed_at,
                "closed_how": rng.choice(("confirmed", "no_answer")) if closed else None,
                "rating": rng.choice((None, 3, 4, 5, 5)) if closed else None,
                "decision_id": decision_id,
            }
        )
        message_rows.append(
            {"ticket_id": ticket_id, "at": opened, "kind": "customer", "author_key": customer_key(person),
             "author_name": rng.choice(CUSTOMER_NAMES), "text": question}
        )  # fmt: skip
        if rng.random() < 0.8:
            message_rows.append(
                {"ticket_id": ticket_id, "at": opened + timedelta(minutes=rng.uniform(1, 600)),
                 "kind": "staff", "author_key": "slack:USTAFF", "author_name": "Sam", "text": "Let me look"}
            )  # fmt: skip
    async with database.transaction() as session:
        for table, rows in (
            (KBDecision, decision_rows),
            (Ticket, ticket_rows),
            (TicketMessage, message_rows),
        ):
            for first in range(0, len(rows), 5000):
                await session.execute(insert(table.__table__), rows[first : first + 5000])  # type: ignore[attr-defined]
        # The counter that numbers tickets, so a ticket opened later does not reuse a number; on
        # PostgreSQL, the id sequences the explicit ids skipped.
        await session.execute(insert(Counter.__table__), [{"name": "ticket", "value": len(ticket_rows)}])  # type: ignore[attr-defined]
        if database.dialect == "postgresql":
            for table in ("kb_decisions", "tickets", "ticket_messages"):
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                await session.execute(text(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))"))
