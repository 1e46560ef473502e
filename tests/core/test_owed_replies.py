"""Replies committed with the event but not yet posted when the process died: the next process posts
them, once, and records what they asked to record once sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core import privacy
from bot.core.context import HandlerContext, PendingDelivery
from bot.core.dispatch import Outcome
from bot.core.events import (
    ActionInvoked,
    Actor,
    Attachment,
    Button,
    ButtonStyle,
    CommandInvoked,
    Conversation,
    Delivery,
    FetchFrom,
    Field,
    Mention,
    MessageReceived,
    NewThread,
    OutboundMessage,
    Platform,
    ReactionAdded,
    SentRef,
    SharedFile,
)
from bot.core.leases import MAX_HOLD
from bot.core.owed import NotKeepable, decode, encode, encode_event
from bot.core.router import action
from bot.handlers.incidents import RememberProgressMessage
from bot.tickets.workflows import AdoptNewThread, AdoptThread, RememberStaffThread
from storage import events_repo
from storage.db import Database
from storage.models import ProcessedEvent, Ticket
from tests.fake_adapter import FakeAdapter
from tests.harness import COMMUNITY, STAFF_CHANNEL, BotHarness, make_settings

SLACK = Platform.SLACK
CASEY = Actor(platform=SLACK, id="U0CASEY", display_name="Casey", roles=frozenset({"customer", "beta"}))
HELP = Conversation(platform=SLACK, workspace_id="T1", channel_id="C0HELP", thread_id="171.2")
AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def every_kind_of_reply() -> list[PendingDelivery]:
    message = OutboundMessage(
        text="Your ticket **#12** is open <@here> `code`",
        title="Ticket #12",
        fields=(Field(name="Priority", value="high", inline=False),),
        buttons=(Button(action_id="ticket.claim", label="Claim", value="12", style=ButtonStyle.PRIMARY),),
        mentions=(Mention(kind="group", id="S0ONCALL"),),
        private_to=CASEY,
        in_thread=False,
        footer="ref abc",
        attachments=(
            Attachment(filename="chart.png", data=b"\x89PNG\x00\xff", title="Main chart", alt_text="bars"),
            Attachment(filename="report.html", path=Path("/tmp/report.html")),
            Attachment(
                filename="export.png",
                fetch=FetchFrom(
                    platform=Platform.SLACK,
                    file=SharedFile(name="export.png", size=9, ref="https://files.slack.com/files-pri/T-F/d"),
                ),
                instead="📎 `export.png` (9 bytes)",
            ),
        ),
    )
    asked = [
        MessageReceived(
            actor=CASEY, conversation=HELP, text="is the api down?", message_id="171.3", occurred_at=AT
        ),
        MessageReceived(
            actor=CASEY,
            conversation=HELP,
            text="",
            message_id="171.6",
            files=(
                SharedFile(
                    name="export.log", size=812, kind="text/plain", link="https://x.slack.com/files/F1"
                ),
                SharedFile(name="unnamed"),
            ),
        ),
        CommandInvoked(actor=CASEY, conversation=HELP, name="ticket", args="status 12", event_id="t1"),
        ActionInvoked(actor=CASEY, conversation=HELP, action_id="kb.solved", value="e1", message_id="171.4"),
        ReactionAdded(actor=CASEY, conversation=HELP, emoji="ticket", message_id="171.5", message_text=None),
    ]
    replies = [
        PendingDelivery(
            Delivery(
                conversation=HELP,
                message=message,
                reply_to=event,
                idempotency_key="r1",
                new_thread=NewThread(title="Ticket #12", invite=(CASEY,)),
            ),
            AdoptNewThread(12, "C0HELP", None),
        )
        for event in asked
    ]
    edit = SentRef(platform=SLACK, workspace_id="T1", channel_id="C0HELP", message_id="171.9", thread_id=None)
    replies.append(
        PendingDelivery(Delivery(conversation=HELP, message=OutboundMessage(text="edited"), edit=edit))
    )
    replies += [
        PendingDelivery(Delivery(conversation=HELP, message=OutboundMessage(text="x")), hook)
        for hook in (AdoptThread(3), RememberStaffThread(4), RememberProgressMessage(5))
    ]
    told_privately = Delivery(conversation=HELP, message=message, reply_to=asked[1])
    in_dms = Delivery(conversation=HELP, message=message, direct_to=CASEY, or_else=told_privately)
    replies.append(
        PendingDelivery(Delivery(conversation=HELP, message=message, or_else=in_dms), AdoptThread(6))
    )
    return replies


def test_every_kind_of_reply_reads_back_as_it_was_kept() -> None:
    replies = every_kind_of_reply()

    assert decode(encode(replies)) == replies


def test_a_reply_whose_on_sent_is_a_plain_function_cannot_be_kept() -> None:
    async def remember(*_: object) -> None:
        return None

    reply = PendingDelivery(Delivery(conversation=HELP, message=OutboundMessage(text="hi")), remember)

    with pytest.raises(NotKeepable):
        encode([reply])


def test_a_stored_reply_naming_a_class_that_is_not_a_message_type_is_refused() -> None:
    forged = '[{"delivery":{"~":"Path","args":["/etc/passwd"]},"on_sent":null}]'

    with pytest.raises(ValueError, match="unknown message type"):
        decode(forged)


class PlatformThatNeverAnswers(FakeAdapter):
    """The process dies while its post is in flight: the request is sent and nothing comes back."""

    def __init__(self) -> None:
        super().__init__(Platform.CONSOLE)
        self.asked = asyncio.Event()

    async def send(self, delivery: Delivery) -> SentRef:
        self.asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class PlatformThatIsSlow(FakeAdapter):
    """Answers only when told to: timeouts and rate limits keep a live process posting for long."""

    def __init__(self) -> None:
        super().__init__(Platform.CONSOLE)
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def send(self, delivery: Delivery) -> SentRef:
        self.asked.set()
        await self.answer.wait()
        return await super().send(delivery)


async def posting_slowly(harness: BotHarness, text: str) -> tuple[PlatformThatIsSlow, asyncio.Task[Outcome]]:
    """The customer's message is handled and committed; its first reply is in flight until the
    platform is told to answer."""
    platform = PlatformThatIsSlow()
    harness.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = platform
    question = MessageReceived(
        actor=harness.customer, conversation=harness.community, text=text, message_id="u1"
    )
    handling = asyncio.create_task(harness.bot.dispatcher.handle(question))
    await asyncio.wait_for(platform.asked.wait(), 10)
    return platform, handling


@pytest.fixture
async def dying(database: Database, tmp_path: object) -> AsyncIterator[BotHarness]:
    """A bot whose process will be killed while it posts."""
    harness = await BotHarness.create(make_settings(tmp_path), database=database)
    harness.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = PlatformThatNeverAnswers()
    yield harness
    await harness.close()


async def killed_while_posting(harness: BotHarness, text: str) -> None:
    """The customer's message is handled and committed; the process dies before its reply lands."""
    await killed_while_handling(harness, harness.customer, harness.community, text, message_id="u1")


async def killed_while_handling(
    harness: BotHarness, actor: Actor, where: Conversation, text: str, *, message_id: str
) -> None:
    event = MessageReceived(
        actor=actor, conversation=where, text=text, message_id=message_id, event_id=message_id
    )
    platform = harness.bot.dispatcher.outbound.adapters[Platform.CONSOLE]
    assert isinstance(platform, PlatformThatNeverAnswers)
    platform.asked.clear()
    handling = asyncio.create_task(harness.bot.dispatcher.handle(event))
    await asyncio.wait_for(platform.asked.wait(), 10)
    handling.cancel()  # a SIGKILL: nothing after this point runs
    await asyncio.gather(handling, return_exceptions=True)


async def test_an_answer_lost_with_the_process_is_posted_by_the_next_one_once(
    dying: BotHarness, next_process: BotHarness
) -> None:
    await killed_while_posting(dying, "how do I reset my API key?")

    assert await next_process.bot.dispatcher.pay_owed() == 0, "the dead process's lease still runs"
    next_process.clock.advance(seconds=31)
    assert await next_process.bot.dispatcher.pay_owed() == 1
    assert await next_process.bot.dispatcher.pay_owed() == 0

    (answer,) = next_process.adapter.sent
    assert "API key" in answer.text
    assert answer.delivery.resend, "marked as a resend, so a platform that saw it can recognise it"
    assert answer.delivery.idempotency_key, "with the key it was committed with"


async def test_a_redelivered_event_after_the_kill_is_still_a_duplicate(
    dying: BotHarness, next_process: BotHarness
) -> None:
    await killed_while_posting(dying, "how do I reset my API key?")
    redelivered = MessageReceived(
        actor=next_process.customer,
        conversation=next_process.community,
        text="how do I reset my API key?",
        message_id="u1",
        event_id="u1",
    )

    assert await next_process.send(redelivered) == []
    next_process.clock.advance(seconds=31)
    await next_process.bot.dispatcher.pay_owed()

    assert len(next_process.adapter.sent) == 1, "answered once: by the owed reply, not by the redelivery"


async def test_an_escalation_lost_with_the_process_still_links_the_staff_thread(
    dying: BotHarness, next_process: BotHarness, database: Database
) -> None:
    await killed_while_posting(dying, "I want to talk to a human")
    next_process.clock.advance(seconds=31)

    await next_process.bot.dispatcher.pay_owed()

    card = next(m for m in next_process.adapter.sent if m.channel_id == STAFF_CHANNEL)
    async with database.session() as session:
        ticket = (await session.execute(select(Ticket))).scalars().one()
    assert (ticket.staff_channel_id, ticket.staff_thread_id) == (STAFF_CHANNEL, card.ref.message_id)
    answer = next(m for m in next_process.adapter.sent if m.channel_id != STAFF_CHANNEL)
    in_the_thread = next_process.community.in_thread(answer.ref.thread_id or "")
    relayed = await next_process.send(
        MessageReceived(
            actor=next_process.customer,
            conversation=in_the_thread,
            text="it fails with error 500",
            message_id="u2",
            event_id="u2",
        )
    )
    assert [(m.channel_id, m.ref.thread_id) for m in relayed] == [(STAFF_CHANNEL, card.ref.message_id)]


async def test_posted_replies_leave_nothing_owed_after_the_next_tick(
    bot: BotHarness, database: Database
) -> None:
    await bot.customer_says("I want to talk to a human")
    await bot.customer_says("how do I reset my API key?")
    await bot.bot.dispatcher.keep_owing()

    async with database.session() as session:
        owed = (
            await session.execute(select(ProcessedEvent.owed).where(ProcessedEvent.owed.is_not(None)))
        ).all()  # type: ignore[union-attr]
    assert owed == []
    bot.clock.advance(hours=1)
    assert await bot.bot.dispatcher.pay_owed() == 0


async def test_replies_owed_for_more_than_a_day_are_given_up(
    dying: BotHarness, next_process: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await killed_while_posting(dying, "how do I reset my API key?")
    # The claim was stamped by the database layer's own clock, the wall clock.
    next_process.clock.now = datetime.now(UTC) + timedelta(hours=25)

    assert await next_process.bot.dispatcher.pay_owed() == 0

    assert next_process.adapter.sent == []
    assert "too late to post" in caplog.text
    next_process.clock.advance(seconds=31)
    assert await next_process.bot.dispatcher.pay_owed() == 0, "given up for good, not retried"


async def erase_the_customer(harness: BotHarness) -> int:
    """How many claims' owed replies the erasure dropped."""
    async with harness.bot.database.transaction() as session:
        erasure = await privacy.erase(session, subject=harness.customer.key, now=harness.clock())
    assert erasure is not None
    return erasure.counts.get("processed_events", 0)


async def test_erasing_a_person_drops_the_replies_still_owed_to_them(
    dying: BotHarness, next_process: BotHarness
) -> None:
    await killed_while_posting(dying, "how do I reset my API key?")

    dropped = await erase_the_customer(next_process)
    next_process.clock.advance(seconds=31)

    assert dropped == 1
    assert await next_process.bot.dispatcher.pay_owed() == 0
    assert next_process.adapter.sent == []


async def test_erasing_a_person_drops_what_was_owed_in_their_tickets_conversations(
    dying: BotHarness, next_process: BotHarness
) -> None:
    """Neither the team's answer to their DM nor their own words relayed to the staff thread name
    them: only where the reply goes says whose it is."""
    hanging = dying.bot.dispatcher.outbound.adapters[Platform.CONSOLE]
    dying.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = dying.adapter
    await dying.customer_dms("I want to talk to a human")
    (card,) = dying.staff_posts()
    dying.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = hanging
    staff_thread = dying.staff_room.in_thread(card.ref.message_id)
    await killed_while_handling(
        dying, dying.staff, staff_thread, "please restart the router", message_id="s1"
    )
    dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)
    await killed_while_handling(dying, dying.customer, dm, "my address is 1 Main St", message_id="u2")

    dropped = await erase_the_customer(next_process)
    next_process.clock.advance(seconds=31)

    assert dropped == 2
    assert await next_process.bot.dispatcher.pay_owed() == 0
    assert next_process.adapter.sent == []


async def test_a_live_process_slower_than_the_lease_keeps_its_replies_to_itself(
    database: Database, tmp_path: object, next_process: BotHarness
) -> None:
    slow = await BotHarness.create(make_settings(tmp_path), database=database)
    platform, handling = await posting_slowly(slow, "how do I reset my API key?")

    for _ in range(4):  # 40 s without an answer from the platform; its process ticks on
        slow.clock.advance(seconds=10)
        next_process.clock.advance(seconds=10)
        await slow.bot.dispatcher.keep_owing()
        assert await next_process.bot.dispatcher.pay_owed() == 0, "the live process still holds them"
    platform.answer.set()
    await handling
    await slow.bot.dispatcher.keep_owing()  # its next tick

    assert [m.text for m in platform.sent] == [platform.sent[0].text], "posted once"
    assert next_process.adapter.sent == []
    next_process.clock.advance(minutes=5)
    assert await next_process.bot.dispatcher.pay_owed() == 0
    await slow.close()


async def test_a_claim_whose_post_never_returns_is_held_only_up_to_the_longest_hold_then_swept_elsewhere(
    database: Database, tmp_path: object, next_process: BotHarness
) -> None:
    """A post that hangs (a platform that never answers, a bug) must not hold its replies forever:
    its process renews the claim only up to `MAX_HOLD`, then another process's sweep posts them."""
    hung = await BotHarness.create(make_settings(tmp_path), database=database)
    platform, handling = await posting_slowly(hung, "how do I reset my API key?")

    def tick() -> None:
        hung.clock.advance(seconds=20)
        next_process.clock.advance(seconds=20)

    taken = hung.clock.now
    while hung.clock.now < taken + MAX_HOLD - timedelta(seconds=40):
        tick()
        await hung.bot.dispatcher.keep_owing()
        assert await next_process.bot.dispatcher.pay_owed() == 0, "the live process still holds them"
    paid = 0
    for _ in range(5):  # its renewal ticks go on; past MAX_HOLD they no longer extend the claim
        tick()
        await hung.bot.dispatcher.keep_owing()
        paid += await next_process.bot.dispatcher.pay_owed()

    assert paid == 1
    (answer,) = next_process.adapter.sent
    assert "API key" in answer.text and answer.delivery.resend
    platform.answer.set()
    await handling
    await hung.close()


async def test_a_claim_whose_post_never_returns_is_swept_by_its_own_process_when_it_runs_alone(
    database: Database, tmp_path: object
) -> None:
    """One process (SQLite's usual deployment) whose post hangs: past `MAX_HOLD` it stops renewing
    the claim, and its own sweep, the only one there is, posts the replies again (as a resend)."""
    alone = await BotHarness.create(make_settings(tmp_path), database=database)
    platform, handling = await posting_slowly(alone, "how do I reset my API key?")

    taken = alone.clock.now
    while alone.clock.now < taken + MAX_HOLD - timedelta(seconds=40):
        alone.clock.advance(seconds=20)
        await alone.bot.dispatcher.keep_owing()
        assert await alone.bot.dispatcher.pay_owed() == 0, "it still holds them"
    # The platform answers new requests again; the hung one never returns.
    answering = FakeAdapter(Platform.CONSOLE)
    alone.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = answering
    paid = 0
    for _ in range(5):
        alone.clock.advance(seconds=20)
        await alone.bot.dispatcher.keep_owing()
        paid += await alone.bot.dispatcher.pay_owed()

    assert paid == 1
    (answer,) = answering.sent
    assert "API key" in answer.text and answer.delivery.resend
    platform.answer.set()
    await handling
    await alone.close()


async def test_work_after_the_commit_slower_than_the_lease_keeps_the_replies_to_its_process(
    bot: BotHarness, next_process: BotHarness
) -> None:
    """A KB reload slower than the lease: the committed replies are this process's to post, so
    another process's sweep must not post them meanwhile (they would show twice)."""
    loading, loaded = asyncio.Event(), asyncio.Event()

    @bot.bot.dispatcher.router.on(ActionInvoked, action("test.reload"))
    async def reload_after_the_commit(event: ActionInvoked, ctx: HandlerContext) -> None:
        async def slow_reload() -> None:
            loading.set()
            await loaded.wait()

        await ctx.reply("Reloading.")
        ctx.after_commit(slow_reload)

    click = ActionInvoked(
        actor=bot.staff, conversation=bot.staff_room, action_id="test.reload", value="", message_id="m-1"
    )
    handling = asyncio.create_task(bot.send(click))
    await asyncio.wait_for(loading.wait(), 10)

    for _ in range(4):  # 40 s of loading; its process ticks on
        bot.clock.advance(seconds=10)
        next_process.clock.advance(seconds=10)
        await bot.bot.dispatcher.keep_owing()
        assert await next_process.bot.dispatcher.pay_owed() == 0, "the live process still holds them"
    loaded.set()

    assert [m.text for m in await handling] == ["Reloading."]
    assert next_process.adapter.sent == []


async def test_a_clean_stop_clears_the_replies_it_posted(bot: BotHarness, database: Database) -> None:
    await bot.customer_says("how do I reset my API key?")
    await bot.customer_says("where can I download my invoices?")

    await bot.bot.dispatcher.stop()

    async with database.session() as session:
        owing = (
            await session.execute(select(ProcessedEvent.id).where(ProcessedEvent.owed.is_not(None)))
        ).all()  # type: ignore[union-attr]
    assert owing == [], "the next process would post them again"


async def test_a_reply_posted_after_the_process_lost_its_hold_goes_as_a_resend(
    database: Database, tmp_path: object
) -> None:
    """Its loop stalled past the lease with nothing renewing the hold: another process may already
    have posted the rest, so what it posts from then on is looked up first where the platform can."""
    stalled = await BotHarness.create(make_settings(tmp_path), database=database)
    platform, handling = await posting_slowly(stalled, "I want to talk to a human")

    stalled.clock.advance(seconds=31)
    platform.answer.set()
    await handling

    first, card = platform.sent
    assert (first.delivery.resend, card.delivery.resend) == (False, True)
    assert card.channel_id == STAFF_CHANNEL
    await stalled.close()


async def _owed_until(database: Database) -> list[datetime | None]:
    async with database.session() as session:
        return list((await session.execute(select(ProcessedEvent.owed_until))).scalars())


async def test_a_stalled_process_waking_up_leaves_the_lease_of_a_claim_another_took_over(
    database: Database, tmp_path: object, next_process: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Its loop stalled past the lease, so another process's sweep took the claim over. When it
    wakes, its renewal must not lengthen the other's lease: it learns the claim is no longer its
    own, says so, and leaves it alone."""
    stalled = await BotHarness.create(make_settings(tmp_path), database=database)
    platform, handling = await posting_slowly(stalled, "how do I reset my API key?")
    next_process.clock.advance(seconds=31)
    assert await next_process.bot.dispatcher.pay_owed() == 1
    taken_until = await _owed_until(database)

    stalled.clock.advance(seconds=36)
    await stalled.bot.dispatcher.keep_owing()
    await stalled.bot.dispatcher.keep_owing()

    assert await _owed_until(database) == taken_until, "the other process's lease, as it wrote it"
    assert caplog.text.count("taken over by another process") == 1
    platform.answer.set()
    await handling
    await stalled.close()


class PlatformDownForAWhile(FakeAdapter):
    """Answers every post with a 503 until it is back: longer than the outbound's retries last."""

    def __init__(self) -> None:
        super().__init__(Platform.CONSOLE)
        self.down = True

    async def send(self, delivery: Delivery) -> SentRef:
        if self.down:
            raise DeliveryError("503 service unavailable", permanent=False)
        return await super().send(delivery)


async def test_an_answer_the_platform_refused_past_every_retry_is_posted_once_it_is_back(
    bot: BotHarness,
) -> None:
    platform = PlatformDownForAWhile()
    outbound = bot.bot.dispatcher.outbound
    outbound.adapters[Platform.CONSOLE] = platform
    outbound.base_delay = 0.0  # the retries are not what is measured here
    await bot.customer_says("how do I reset my API key?")
    assert platform.sent == []
    await bot.bot.dispatcher.keep_owing()  # a tick: posted claims are cleared, this one is not

    platform.down = False
    assert await bot.bot.dispatcher.pay_owed() == 0, "tried again after a lease, not at once"
    bot.clock.advance(seconds=31)
    assert await bot.bot.dispatcher.pay_owed() == 1
    (answer,) = platform.sent
    assert "API key" in answer.text and answer.delivery.resend
    await bot.bot.dispatcher.keep_owing()
    bot.clock.advance(seconds=31)
    assert await bot.bot.dispatcher.pay_owed() == 0, "posted once"


NOT_ALLOWED_HERE = DeliveryError("not_in_channel", permanent=True, code=DeliveryFailure.NO_ACCESS)


class PlatformThatDiesInTheDMs(FakeAdapter):
    """The bot may not post in the community channel; the process dies while the DM it sends
    instead is in flight (perhaps posted: nobody will know)."""

    def __init__(self) -> None:
        super().__init__(Platform.CONSOLE)
        self.fail_channel(COMMUNITY, NOT_ALLOWED_HERE)
        self.asked = asyncio.Event()
        self.tried: list[Delivery] = []

    async def send(self, delivery: Delivery) -> SentRef:
        if delivery.direct_to is None:
            return await super().send(delivery)
        self.tried.append(delivery)
        self.asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_ticket_lost_on_its_way_to_the_customers_dms_goes_on_there_once(
    database: Database, tmp_path: object, next_process: BotHarness
) -> None:
    dying = await BotHarness.create(make_settings(tmp_path), database=database)
    platform = PlatformThatDiesInTheDMs()
    dying.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = platform
    asked = CommandInvoked(
        actor=dying.customer, conversation=dying.community, name="ticket", args="new my CSV export failed"
    )
    handling = asyncio.create_task(dying.bot.dispatcher.handle(asked))
    await asyncio.wait_for(platform.asked.wait(), 10)
    handling.cancel()  # a SIGKILL while the DM is in flight
    await asyncio.gather(handling, return_exceptions=True)
    await dying.close()

    next_process.adapter.fail_channel(COMMUNITY, NOT_ALLOWED_HERE)
    next_process.clock.advance(seconds=31)
    assert await next_process.bot.dispatcher.pay_owed() == 1

    (in_dms,) = next_process.adapter.in_channel("D-C1")
    (in_flight,) = platform.tried
    assert in_dms.text.startswith("I'm not allowed to post in the channel where you asked")
    assert in_dms.delivery.resend, "looked for first where the platform can: it may have landed"
    assert in_dms.delivery.idempotency_key == in_flight.idempotency_key, "the same message, not a new one"
    async with database.session() as session:
        ticket = (await session.execute(select(Ticket))).scalars().one()
    assert (ticket.is_direct, ticket.channel_id) == (True, "D-C1"), "the ticket's home moved to the DMs"


async def test_kept_work_no_class_can_read_any_more_is_kept_counted_and_tried_again_hourly(
    bot: BotHarness, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A deploy renamed a `@kept_work` class while a claim still owed its work: the sweep cannot
    build it. The work must not be lost without a trace (a rollback, or a person, can still do it),
    nor read again at every sweep."""
    taught = MessageReceived(
        actor=bot.staff, conversation=bot.staff_room, text="/support kb teach", message_id="s9", event_id="s9"
    )
    renamed = {"hook": "bot.handlers.kb_admin.TeachBeforeTheRename", "fields": {"gap": "g1"}}
    work = json.dumps({"event": encode_event(taught), "work": [renamed]})
    async with database.transaction() as session:
        claim = await events_repo.claim_event(
            session,
            platform=Platform.CONSOLE.value,
            event_id="s9",
            owed=encode([]),
            owed_until=bot.clock() - timedelta(seconds=1),  # its process died
            work=work,
        )
    assert claim is not None

    for _ in range(3):  # a sweep every half hour: it is tried at once, and an hour later
        assert await bot.bot.dispatcher.pay_owed() == 0
        bot.clock.advance(minutes=30, seconds=1)

    async with database.session() as session:
        row = await session.get(ProcessedEvent, claim)
    assert row is not None and row.work == work, "kept as it was"
    assert row.owed_until is not None and row.owed_until > bot.clock(), "tried again later, not at once"
    assert caplog.text.count(f"kept work of claim {claim} cannot be read") == 1
    registry = bot.bot.services.metrics.registry
    assert registry.get_sample_value("supportbot_kept_work_unreadable_total") == 1
