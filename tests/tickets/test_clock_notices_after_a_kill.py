"""The ticket clocks' notices survive the process: a pass that closed a ticket or reminded the team,
then died before its notices went out, leaves them in the outbox, and the next process's outbox
worker sends each once (a customer it cannot reach still heard of in the team's thread). Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core.events import Platform
from bot.core.outbound import Outbound
from bot.status.broadcast.pacing import LanePolicy
from bot.status.broadcast.worker import BroadcastWorker
from bot.tickets.clocks import check_ticket_clocks
from storage import outbox_repo
from storage.models import OutboxDelivery
from tests.core.test_owed_replies import PlatformThatNeverAnswers
from tests.harness import STAFF_CHANNEL, BotHarness, button
from tests.tickets.conversation import escalated, tickets

NOT_ALLOWED = DeliveryError("Missing Access", permanent=True, code=DeliveryFailure.NO_ACCESS)
UNAVAILABLE = DeliveryError("503 Service Unavailable", permanent=False, code=DeliveryFailure.UNAVAILABLE)


async def killed_after_the_commit(bot: BotHarness) -> None:
    """A clock pass decides and commits; the process dies as it sends the first notice."""
    platform = PlatformThatNeverAnswers()
    bot.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = platform
    clocks = asyncio.create_task(
        check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    )
    await asyncio.wait_for(platform.asked.wait(), 10)
    clocks.cancel()  # a SIGKILL: nothing after this point runs
    await asyncio.gather(clocks, return_exceptions=True)


def outbox_worker(harness: BotHarness) -> BroadcastWorker:
    """The process's outbox worker, on the test's clock."""
    return BroadcastWorker(
        harness.bot.database,
        harness.bot.dispatcher.outbound.adapters,
        policy=lambda lane: LanePolicy(rate=None),
        staff_channel=harness.bot.services.staff.staff_channel,
        page_url=None,
        clock=harness.clock,
    )


async def nothing_to_send_yet(harness: BotHarness) -> bool:
    async with harness.bot.database.session() as session:
        return await outbox_repo.lanes_with_work(session, now=harness.clock()) == []


async def test_a_no_answer_close_the_killed_process_never_told_is_told_by_the_next_once(
    bot: BotHarness, next_process: BotHarness
) -> None:
    reply, card = await escalated(bot)
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    bot.clock.advance(hours=73)

    await killed_after_the_commit(bot)

    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how) == ("closed", "no_answer"), "the decision was committed"
    next_process.clock.now = bot.clock.now
    assert await nothing_to_send_yet(next_process), "the dead process's lease still runs"
    next_process.clock.advance(seconds=31)
    worker = outbox_worker(next_process)
    await worker.run_until_idle(limit_s=10)

    sent = next_process.adapter.sent
    assert [(m.channel_id, m.ref.thread_id) for m in sent] == [
        (STAFF_CHANNEL, card.ref.message_id),
        ("community", reply.ref.thread_id),
    ]
    assert sent[0].text == "Ticket #1 closed: Casey didn't answer the close question."
    assert sent[1].text.endswith("If you still need help, reply here within 14 days and it reopens.")
    assert all(m.delivery.resend and m.delivery.idempotency_key for m in sent), "recognisable as resends"
    await worker.run_until_idle(limit_s=10)
    next_process.clock.advance(hours=1)
    await worker.run_until_idle(limit_s=10)
    assert len(next_process.adapter.sent) == 2, "each once"


async def test_a_reminder_the_killed_process_never_sent_reaches_the_team_with_its_page_and_fallback(
    bot: BotHarness, next_process: BotHarness
) -> None:
    """Casey's channel has gone private to the bot by the time the next process sends: the team is
    reminded (on-call paged, as the pass decided) and told in the ticket's thread that she was not."""
    _, card = await escalated(bot)
    bot.clock.advance(hours=4, minutes=1)
    await killed_after_the_commit(bot)
    next_process.adapter.fail_channel("community", NOT_ALLOWED)
    next_process.clock.now = bot.clock.now
    next_process.clock.advance(seconds=31)

    await outbox_worker(next_process).run_until_idle(limit_s=10)

    sent = next_process.adapter.sent
    assert {m.ref.thread_id for m in sent} == {card.ref.message_id}, "all in the ticket's staff thread"
    reminder, not_told = sent
    assert "past its first-response target" in reminder.text
    assert [m.id for m in reminder.delivery.message.mentions] == ["oncall"]
    assert not_told.text.startswith("I couldn't tell Casey that ticket #1 is taking longer than we aim for")
    (ticket,) = await tickets(bot)
    assert ticket.breached
    async with next_process.bot.database.session() as session:
        assert await outbox_repo.delivery_counts(session) == {outbox_repo.SENT: 2}


async def test_notices_a_pass_sent_are_not_sent_again_by_any_worker_nor_kept(bot: BotHarness) -> None:
    await escalated(bot)
    bot.clock.advance(hours=4, minutes=1)
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound))[
        "breached"
    ] == 1
    before = len(bot.adapter.sent)

    bot.clock.advance(hours=1)
    await outbox_worker(bot).run_until_idle(limit_s=10)

    assert len(bot.adapter.sent) == before
    async with bot.bot.database.session() as session:
        assert await outbox_repo.delivery_counts(session) == {outbox_repo.SENT: 2}
        bodies = (await session.execute(select(OutboxDelivery.body))).scalars().all()
    assert bodies == ["", ""], "once sent, what they said (Casey's name) is not kept"


async def test_a_notice_the_platform_kept_failing_is_sent_by_the_worker_later(bot: BotHarness) -> None:
    """Casey's channel answers a 503 on the pass's only try: the team is reminded now, and the
    outbox worker tells Casey once its retry is due."""
    _, card = await escalated(bot)
    bot.clock.advance(hours=4, minutes=1)
    once = Outbound(bot.bot.dispatcher.outbound.adapters, max_attempts=1)
    bot.adapter.fail_channel("community", UNAVAILABLE)
    before = len(bot.adapter.sent)

    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, once))["breached"] == 1

    assert [m.ref.thread_id for m in bot.adapter.sent[before:]] == [card.ref.message_id], "the team only"
    bot.clock.advance(seconds=31)
    await outbox_worker(bot).run_until_idle(limit_s=10)
    (told,) = bot.adapter.sent[before + 1 :]
    assert told.channel_id == "community" and told.text.startswith("We haven't forgotten you")
    assert told.delivery.resend, "the 503 may have hidden a post that landed"


async def test_a_notice_the_killed_process_never_sent_is_not_sent_once_its_customer_is_erased(
    bot: BotHarness, next_process: BotHarness
) -> None:
    """Casey's ticket closed for no answer; the process died before telling her or the team. She
    asks to be forgotten before the next process's worker runs: nothing naming her goes out after
    the erasure, and the outbox keeps nothing of her."""
    await escalated(bot)
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    bot.clock.advance(hours=73)
    await killed_after_the_commit(bot)
    next_process.clock.now = bot.clock.now

    (question,) = await next_process.staff_runs(f"/support privacy erase {next_process.customer.key}")
    (erased,) = await next_process.click(next_process.staff, button(question, "Erase"), on=question)
    assert erased.text.startswith(f"Erased {next_process.customer.key}:"), erased.text
    before = len(next_process.adapter.sent)
    next_process.clock.advance(seconds=31)
    await outbox_worker(next_process).run_until_idle(limit_s=10)

    assert next_process.adapter.sent[before:] == [], "nothing about Casey after her erasure"
    async with next_process.bot.database.session() as session:
        kept = (await session.execute(select(OutboxDelivery))).scalars().all()
    assert kept and all("Casey" not in (row.body or "") for row in kept), [row.body for row in kept]
