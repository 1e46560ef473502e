"""What support-conversation tests read back: the tickets, a ticket's transcript, an escalation."""

from __future__ import annotations

from sqlmodel import select

from storage.models import Ticket, TicketMessage
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness


async def tickets(bot: BotHarness) -> list[Ticket]:
    async with bot.bot.database.session() as session:
        return list((await session.execute(select(Ticket).order_by(Ticket.number))).scalars())


async def transcript(bot: BotHarness, number: int) -> list[tuple[str, str]]:
    async with bot.bot.database.session() as session:
        ticket = (await session.execute(select(Ticket).where(Ticket.number == number))).scalar_one()
        rows = await session.execute(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
        )
        return [(m.kind, m.text) for m in rows.scalars()]


async def escalated(
    bot: BotHarness, text: str = "can I talk to a human please"
) -> tuple[SentMessage, SentMessage]:
    """The customer asks for a person in the community channel: (reply to customer, staff card)."""
    sent = await bot.customer_says(text)
    to_customer = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    to_staff = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert len(to_customer) == 1 and len(to_staff) == 1, [m.text for m in sent]
    return to_customer[0], to_staff[0]
