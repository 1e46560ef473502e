"""Ticket clocks: first-response targets that pass unclaimed, and close questions nobody answered.

Runs periodically in every bot process; the row locks in the repository queries make sure each
ticket is re-escalated or auto-closed by exactly one of them. The notices a pass decides are kept in
the outbox by the transaction that decides them and sent after it commits: a process killed in
between leaves them to the next process's outbox worker, never lost (`bot.status.broadcast.kept`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from bot.core import periodic
from bot.core.clock import humanize
from bot.core.context import Services
from bot.core.events import Conversation, Delivery, OutboundMessage
from bot.core.outbound import Outbound
from bot.status.broadcast.kept import keep, send_kept
from bot.tickets import messages
from bot.tickets.workflows import customer_conversation
from storage import outbox_repo, status_repo, tickets_repo
from storage.db import Database
from storage.models import OutboxDelivery, Ticket
from storage.session import DbSession

log = logging.getLogger(__name__)

PAGE = 100
RETRY_SECONDS = 30.0
"""A notice every try of which met a transient failure goes back to the outbox: its worker tries
again after this long."""


async def _paused_for(session: DbSession, ticket: Ticket, now: datetime) -> timedelta:
    """Maintenance on the ticket's component stops its first-response clock for that long."""
    if not ticket.component:
        return timedelta()
    return await status_repo.maintenance_overlap(
        session, component=ticket.component, start=ticket.created_at, end=now
    )


async def _past_target(session: DbSession, now: datetime) -> list[Ticket]:
    """Every unclaimed ticket past its raw target, page by page (most are usually one page)."""
    found: list[Ticket] = []
    after: tuple[datetime, int] | None = None
    while True:
        page = await tickets_repo.due_for_breach(session, now=now, after=after, limit=PAGE)
        found.extend(page)
        if len(page) < PAGE:
            return found
        after = (page[-1].first_response_due, page[-1].id or 0)


def _staff_target(services: Services, ticket: Ticket) -> Conversation:
    staff = services.staff.staff_channel
    return staff.in_thread(ticket.staff_thread_id) if ticket.staff_thread_id else staff


def _to_customer(
    ticket: Ticket, message: OutboundMessage, *, or_told: Conversation, not_told: str
) -> Delivery:
    """`message` for the ticket's customer. One the bot cannot reach (their DMs closed, the bot not
    allowed where the ticket lives, the channel gone) is not told; the team is, in `or_told`."""
    return Delivery(
        conversation=customer_conversation(ticket),
        message=message,
        or_else=Delivery(conversation=or_told, message=OutboundMessage(text=not_told)),
    )


async def check_ticket_clocks(database: Database, services: Services, outbound: Outbound) -> dict[str, int]:
    """One pass. Returns how many tickets were re-escalated and auto-closed."""
    now = services.clock()
    # This pass holds its notices as a worker holds what it claims, for as long.
    owner = f"clocks-{uuid.uuid4().hex[:12]}"
    lease = timedelta(seconds=services.settings.broadcast_lease_seconds)
    deliveries: list[Delivery] = []
    breached = closed = 0
    async with database.transaction() as session:
        for ticket in await _past_target(session, now):
            # Time under maintenance does not count, neither for the target nor for how late it is.
            due = ticket.first_response_due + await _paused_for(session, ticket, now)
            if now < due:
                continue
            ticket.breached = True
            breached += 1
            overdue = humanize(now - due)
            mentions = services.staff.oncall_mentions(services.staff.staff_channel.platform)
            staff = _staff_target(services, ticket)
            deliveries.append(
                Delivery(
                    conversation=staff,
                    message=messages.breach_to_staff(ticket, mentions, overdue=overdue),
                )
            )
            deliveries.append(
                _to_customer(
                    ticket,
                    messages.breach_to_customer(ticket),
                    or_told=staff,
                    not_told=messages.breach_not_passed_on(ticket),
                )
            )
            await tickets_repo.add_message(
                session,
                ticket=ticket,
                kind="system",
                text="First-response target missed; team reminded",
                at=now,
            )
        before = now - timedelta(hours=services.settings.close_confirm_hours)
        for ticket in await tickets_repo.unconfirmed_since(session, before=before):
            ticket.state = "closed"
            ticket.closed_at = now
            ticket.closed_how = "no_answer"
            closed += 1
            await tickets_repo.add_message(
                session,
                ticket=ticket,
                kind="system",
                text="Closed: no answer to the close question",
                at=now,
            )
            # The team first: should the notice not reach the customer, its next line says so.
            staff = _staff_target(services, ticket)
            closed_note = OutboundMessage(text=messages.closed_for_no_answer_to_staff(ticket))
            deliveries.append(Delivery(conversation=staff, message=closed_note))
            deliveries.append(
                _to_customer(
                    ticket,
                    messages.closed_for_no_answer(ticket),
                    or_told=staff,
                    not_told=messages.closed_not_passed_on(ticket),
                )
            )
        kept = [
            await keep(session, delivery=delivery, key=f"{owner}-{index}", owner=owner, until=now + lease)
            for index, delivery in enumerate(deliveries)
        ]
    await _send_kept(database, services, outbound, kept, owner=owner, lease=lease)
    if breached or closed:
        log.info("ticket clocks: %d re-escalated, %d closed without answer", breached, closed)
    return {"breached": breached, "auto_closed": closed}


async def _send_kept(
    database: Database,
    services: Services,
    outbound: Outbound,
    kept: list[OutboxDelivery],
    *,
    owner: str,
    lease: timedelta,
) -> None:
    """Send the pass's notices in order, each held afresh first: one whose lease ran out meanwhile
    (a slow platform) is another process's now, and sending it here too would show it twice."""
    left = False
    for row in kept:
        async with database.transaction() as session:
            mine = await outbox_repo.hold(session, delivery=row, owner=owner, until=services.clock() + lease)
        if not mine:
            continue
        state = await send_kept(
            database,
            outbound,
            row,
            owner=owner,
            clock=services.clock,
            retry_in=RETRY_SECONDS,
            within=lease.total_seconds() / 2,
        )
        left = left or state == outbox_repo.PENDING
    if left:
        services.broadcaster.wake()


async def run_forever(
    database: Database, services: Services, outbound: Outbound, *, every: float = 30.0, stop: asyncio.Event
) -> None:
    """A pass every `every` seconds until `stop` is set. Stopping waits for a pass in progress instead
    of cancelling it, so no query is abandoned half-way on a database connection about to close."""
    await periodic.every(
        every,
        stop,
        lambda: check_ticket_clocks(database, services, outbound),
        log=log,
        failed="ticket clock pass failed; trying again next time",
    )
