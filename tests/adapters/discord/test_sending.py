"""Sending on Discord: long texts split at paragraphs and known by their first part, mentions that
ping only on purpose, rate limits and server errors waited out and retried once, a resend after a
crash posting nothing new, a post, an upload, an edit or a DM channel that hangs given up and asked
for again without holding its channel, and channels the bot may not post in reported to staff (or
not tried)."""

from __future__ import annotations

import asyncio
import time

from bot.adapters.discord.adapter import DiscordAdapter
from bot.adapters.discord.bounded import SEND_TIMEOUT
from bot.core.events import (
    Actor,
    Attachment,
    Button,
    Conversation,
    Delivery,
    OutboundMessage,
    Platform,
    SentRef,
)
from bot.core.outbound import Outbound
from tests.adapters.discord.harness import connect, posted, start_bot, text_of, ticket_thread
from tests.harness import delivery_figures


async def test_a_long_answer_is_split_at_paragraphs_under_2000_characters(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    question = await emu.user_says(world.casey, world.help, "long answer")

    first = await emu.wait_for("POST", f"/channels/{question['id']}/messages")
    second = await emu.wait_for("POST", f"/channels/{question['id']}/messages")

    total = len(first.content) + len(second.content)
    assert total > 2500
    assert len(first.content) <= 2000 and len(second.content) <= 2000
    assert first.content.endswith("sign in again.") and second.content[0].isdigit(), "cut between paragraphs"


async def test_relayed_everyone_pings_nobody_but_the_oncall_role_is_pinged(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu

    await emu.user_says(world.casey, world.help, "relay @everyone @here <@&999> the site is down")

    relayed = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    allowed = relayed.json["allowed_mentions"]
    assert (allowed["parse"], allowed["users"], [str(r) for r in allowed["roles"]]) == (
        [],
        [],
        [world.staff_role],
    )
    assert relayed.content.startswith(f"<@&{world.staff_role}>")
    assert "@everyone" not in relayed.content and "@here" not in relayed.content
    assert "@\u200beveryone @\u200bhere <@&999> the site is down" in relayed.content


async def test_a_429_is_waited_out_and_the_message_still_arrives(world, handlers, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    emu.fail_next(status=429, method="POST", path=f"/channels/{world.staff.id}/messages", retry_after=0.3)

    await emu.user_says(world.casey, world.help, "relay printer on fire")

    delivered = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    attempts = [
        c for c in emu.calls if c.method == "POST" and c.path == f"/channels/{world.staff.id}/messages"
    ]
    assert [c.status for c in attempts] == [429, 200]
    assert "printer on fire" in delivered.content
    await bot.dispatcher.drain()
    # discord.py waited the 429 out inside its HTTP client; the metrics count it all the same.
    figures = delivery_figures(bot, Platform.DISCORD)
    assert (figures["429s"], figures["retries"], figures["failed"]) == (1, 1, 0)


async def test_429s_discord_py_gives_up_on_are_retried_by_the_bot_and_each_counted_once(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    staff_posts = f"/channels/{world.staff.id}/messages"
    # discord.py tries a request 5 times; then the bot's own retry waits Retry-After and sends it.
    emu.fail_next(status=429, method="POST", path=staff_posts, retry_after=0.05, count=5)

    await emu.user_says(world.casey, world.help, "relay the fax is smoking")

    delivered = await emu.wait_for("POST", staff_posts, timeout=15)
    await bot.dispatcher.drain()
    assert [c.status for c in emu.calls if (c.method, c.path) == ("POST", staff_posts)] == [429] * 5 + [200]
    assert "the fax is smoking" in delivered.content
    figures = delivery_figures(bot, Platform.DISCORD)
    assert (figures["429s"], figures["retries"], figures["failed"]) == (5, 5, 0)


async def test_a_500_is_retried_and_the_message_arrives_exactly_once(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    emu.fail_next(status=500, method="POST", path=f"/channels/{world.staff.id}/messages")

    await emu.user_says(world.casey, world.help, "relay the printer is on fire")

    # discord.py waits a second before it retries a 5xx.
    delivered = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    await bot.dispatcher.drain()
    attempts = [
        c for c in emu.calls if c.method == "POST" and c.path == f"/channels/{world.staff.id}/messages"
    ]
    assert [c.status for c in attempts] == [500, 200]
    assert "the printer is on fire" in delivered.content
    stored = [m for m in emu.channel_messages(world.staff) if "printer" in m["content"]]
    assert len(stored) == 1
    figures = delivery_figures(bot, Platform.DISCORD)
    assert (figures["429s"], figures["retries"], figures["failed"]) == (0, 1, 0)


async def test_a_burst_over_the_global_limit_is_waited_out_by_discord_py(world, adapters):
    emu = world.emu
    emu.global_limit = 10
    adapter, _ = await connect(world, adapters)
    channels = [emu.add_channel(world.guild, f"status-{i}") for i in range(15)]

    await asyncio.gather(
        *(
            adapter.send(
                Delivery(
                    conversation=Conversation(platform=Platform.DISCORD, channel_id=c.id),
                    message=OutboundMessage(text="Investigating: API errors"),
                )
            )
            for c in channels
        )
    )

    statuses = [c.status for c in emu.calls if c.path.endswith("/messages")]
    assert statuses.count(429) >= 1, "the burst did exceed the global limit"
    assert all(emu.channel_messages(c) for c in channels), "yet every channel got its message"


async def test_a_broadcast_resent_after_a_crash_posts_nothing_new(world, adapters):
    """The outbox may resend a delivery whose send was in flight at a crash: the same idempotency key
    becomes the same enforced nonce, and Discord keeps the first message."""
    emu = world.emu
    adapter, _ = await connect(world, adapters)
    channel = emu.add_channel(world.guild, "status")
    delivery = Delivery(
        conversation=Conversation(platform=Platform.DISCORD, channel_id=channel.id),
        message=OutboundMessage(text="Investigating: API errors"),
        idempotency_key="broadcast-7:discord:status",
    )
    first = await adapter.send(delivery)
    again = await adapter.send(delivery)
    assert again.message_id == first.message_id
    assert len(emu.channel_messages(channel)) == 1
    other = Delivery(
        conversation=delivery.conversation,
        message=delivery.message,
        idempotency_key="broadcast-8:discord:status",
    )
    await adapter.send(other)
    assert len(emu.channel_messages(channel)) == 2, "a different delivery is a different message"


async def test_an_answer_whose_post_hangs_is_sent_again_and_the_channel_moves_on(
    world, database, tmp_path, bots
):
    """Discord applies the post but answers 9 s late: the bot gives up after SEND_TIMEOUT and sends
    it again with the same nonce, so the next question in the channel is not held for the 9 s, and
    the first is answered once."""
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    for channel in (world.help, world.staff):  # the catch-up's reads, before the stall is set
        await emu.wait_for("GET", f"/channels/{channel.id}/messages")
    emu.stall_next(seconds=9, path="/channels/*/messages")

    asked = time.monotonic()
    first = await emu.user_says(world.casey, world.help, "How do I reset my API key?")
    second = await emu.user_says(world.robin, world.help, "Where can I download my invoices?")
    answer = await emu.wait_for("POST", f"/channels/{second['id']}/messages", timeout=9)
    waited = time.monotonic() - asked

    assert "invoice" in text_of(answer.json).lower()
    assert SEND_TIMEOUT <= waited < 9, "held for the timeout, not for the whole stall"
    answers = [m for m in emu.channel_messages(first["id"]) if m["author"]["id"] == emu.bot.id]
    assert len(answers) == 1, "the post sent again was the same message (its nonce)"


async def test_a_long_notice_is_known_by_its_first_part(world, adapters):
    """A notice longer than one message goes out in parts; threads hang under, and edits replace,
    the part that starts it."""
    emu = world.emu
    adapter, _ = await connect(world, adapters)
    channel = emu.add_channel(world.guild, "status")
    text = "\n\n".join(f"Region {n}: " + "rolling back and verifying. " * 20 for n in range(8))
    delivery = Delivery(
        conversation=Conversation(platform=Platform.DISCORD, channel_id=channel.id),
        message=OutboundMessage(text=text),
    )
    ref = await adapter.send(delivery)
    first, *rest = emu.channel_messages(channel)
    assert rest, "the notice needed more than one message"
    assert ref.message_id == first["id"]
    assert first["content"].startswith("Region 0:")


async def test_missing_access_is_reported_to_staff_once(world, handlers, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    announcements = emu.add_channel(world.guild, "announcements")
    emu.deny_access(announcements)

    for _ in range(2):
        await emu.user_says(world.sam, world.help, f"post in {announcements.id}")
    notice = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    await bot.dispatcher.drain()

    attempts = [
        c for c in emu.calls if c.method == "POST" and c.path == f"/channels/{announcements.id}/messages"
    ]
    assert [c.status for c in attempts] == [403, 403], "each attempt refused, none retried"
    assert f"I can't post in channel `{announcements.id}` on discord (no_access)" in notice.content
    staff_posts = [
        c for c in emu.calls if c.method == "POST" and c.path == f"/channels/{world.staff.id}/messages"
    ]
    assert len(staff_posts) == 1, "staff told once"


async def _robins_dms_closed_in_caseys_thread(world, database, tmp_path, bots):
    """Casey's ticket in a public thread of #help, and Robin, whose DMs are closed to the bot."""
    bot, adapter = await start_bot(world, database, tmp_path)
    bots.append(bot)
    world.guild.private_threads = False
    await world.emu.user_says(world.casey, world.help, "I want to talk to a person about my invoice")
    room = await ticket_thread(world.emu, world.help, 1)
    await posted(world.emu, room.id, "ticket **#1**")
    dm = world.emu.dm_channel(world.robin)
    world.emu.deny_access(dm)
    return bot, adapter, room, dm


async def test_a_private_reply_to_someone_whose_dms_are_closed_is_owed_where_they_asked(
    world, database, tmp_path, bots
):
    """Robin writes in Casey's (public) ticket thread; the bot's private answer goes to Robin's DMs,
    which are closed to it. The channel is fine: staff are not asked to fix the bot's access to it.
    Robin is told there that an answer awaits, pinged alone, and never what it says."""
    bot, _, room, dm = await _robins_dms_closed_in_caseys_thread(world, database, tmp_path, bots)
    emu = world.emu

    await emu.user_says(world.robin, room, "can I talk to a human too? my login fails")
    told = await posted(emu, room.id, "an answer just for you")
    await bot.dispatcher.drain()

    (refused,) = [c for c in emu.calls if c.path == f"/channels/{dm.id}/messages"]
    assert refused.status == 403 and "someone else's ticket" in refused.content
    to_staff = [text_of(c.json or {}) for c in emu.calls if c.path == f"/channels/{world.staff.id}/messages"]
    assert not [t for t in to_staff if "I can't post in channel" in t], to_staff
    assert not [m for m in emu.channel_messages(room) if "someone else's ticket" in text_of(m)], "not public"
    assert "Privacy Settings" in text_of(told) and "/ticket status" in text_of(told)
    assert told["content"].startswith(f"<@{world.robin.id}>")
    (call,) = [c for c in emu.calls if c.path == f"/channels/{room.id}/messages" and "just for" in c.content]
    mentions = call.json["allowed_mentions"]
    assert [str(u) for u in mentions["users"]] == [world.robin.id], "Robin alone is pinged"
    assert not mentions.get("roles") and "everyone" not in mentions["parse"]


async def test_someone_whose_dms_are_closed_is_told_so_once_not_under_every_private_reply(
    world, database, tmp_path, bots
):
    """Robin asks for help three times in Casey's ticket thread, her DMs closed to the bot: each
    private answer fails, but the thread gets one note about her DMs, not three; once the quiet
    window has passed, a new failure says it again."""
    bot, adapter, room, dm = await _robins_dms_closed_in_caseys_thread(world, database, tmp_path, bots)
    emu = world.emu

    async def robin_asks(question: str, *, answers_so_far: int) -> list[str]:
        """Her private answer tried (and refused); the notes about her DMs in the thread by then."""
        await emu.user_says(world.robin, room, question)
        for _ in range(100):  # the refusal is no successful call that `wait_for` could wait for
            if len([c for c in emu.calls if c.path == f"/channels/{dm.id}/messages"]) == answers_so_far:
                break
            await asyncio.sleep(0.02)
        await bot.dispatcher.drain()
        return [text_of(m) for m in emu.channel_messages(room) if "an answer just for you" in text_of(m)]

    await robin_asks("can I talk to a human too?", answers_so_far=1)
    await robin_asks("my login fails, I need help", answers_so_far=2)
    notes = await robin_asks("please open a ticket", answers_so_far=3)
    assert len(notes) == 1, "said once"

    adapter.dms_closed_quiet = 0.0  # the window has passed
    notes = await robin_asks("I need help, my login fails again", answers_so_far=4)
    assert len(notes) == 2


async def test_a_channel_the_bot_cannot_see_is_not_even_tried(world, handlers, database, tmp_path, bots):
    emu = world.emu
    private = emu.add_channel(world.guild, "leadership", hidden_from_bot=True)
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)

    await emu.user_says(world.sam, world.help, f"post in {private.id}")
    notice = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")

    assert "(no_access)" in notice.content
    assert not [c for c in emu.calls if c.path.startswith(f"/channels/{private.id}")], (
        "the cached permissions said no: no request that would count toward Discord's invalid-request ban"
    )


async def _sent_through_the_core(adapter: DiscordAdapter, delivery: Delivery) -> tuple[SentRef | None, float]:
    """The delivery sent as the bot sends it (the core's retries, no backoff to speak of), and how long
    that took."""
    asked = time.monotonic()
    ref = await Outbound({Platform.DISCORD: adapter}, base_delay=0.01).send(delivery)
    return ref, time.monotonic() - asked


async def test_an_edit_whose_request_hangs_is_made_again_and_does_not_wait_out_the_stall(world, adapters):
    """Editing a known message twice leaves it as once: after the timeout the core makes it again."""
    emu = world.emu
    adapter, _ = await connect(world, adapters, send_timeout=0.5)
    channel = emu.add_channel(world.guild, "status")
    where = Conversation(platform=Platform.DISCORD, channel_id=channel.id)
    investigating = OutboundMessage(text="Investigating: API errors")
    card = await adapter.send(Delivery(conversation=where, message=investigating, idempotency_key="card"))
    emu.stall_next(seconds=3, path=f"/channels/{channel.id}/messages/{card.message_id}")

    resolved = OutboundMessage(text="Resolved: API errors")
    ref, waited = await _sent_through_the_core(
        adapter, Delivery(conversation=where, message=resolved, edit=card)
    )

    assert ref == card
    assert waited < 3, "not held for the whole stall"
    assert [text_of(m) for m in emu.channel_messages(channel)] == ["Resolved: API errors"]


async def test_an_upload_whose_request_hangs_is_sent_again_as_the_same_message(world, adapters):
    """The files ride with the post's nonce, so the upload sent again after the timeout is the message
    Discord already made."""
    emu = world.emu
    adapter, _ = await connect(world, adapters, send_timeout=0.5)
    channel = emu.add_channel(world.guild, "reports")
    where = Conversation(platform=Platform.DISCORD, channel_id=channel.id)
    chart = Attachment(
        filename="tickets.png", data=b"\x89PNG\r\n\x1a\n" + bytes(64), title="Tickets this week"
    )
    emu.stall_next(seconds=3, path=f"/channels/{channel.id}/messages")

    digest = OutboundMessage(text="Weekly digest: 42 tickets", attachments=(chart,))
    ref, waited = await _sent_through_the_core(adapter, Delivery(conversation=where, message=digest))

    assert ref is not None
    assert waited < 3, "not held for the whole stall"
    assert [m["id"] for m in emu.channel_messages(channel)] == [ref.message_id]
    assert [u.filename for u in emu.uploads] == ["tickets.png"]


async def test_a_private_reply_whose_dm_channel_hangs_is_asked_for_again_and_sent_once(world, adapters):
    """Opening a DM gives the same channel however often it is asked for: the core asks again."""
    emu = world.emu
    adapter, _ = await connect(world, adapters, send_timeout=0.5)
    help_channel = Conversation(
        platform=Platform.DISCORD, workspace_id=world.guild.id, channel_id=world.help.id
    )
    casey = Actor(platform=Platform.DISCORD, id=world.casey.id, display_name="casey")
    emu.stall_next(seconds=3, path="/users/@me/channels")

    private = OutboundMessage(text="Your invoice is attached to your account page.", private_to=casey)
    ref, waited = await _sent_through_the_core(adapter, Delivery(conversation=help_channel, message=private))

    assert ref is not None
    assert waited < 3, "not held for the whole stall"
    dm = emu.dm_channel(world.casey)
    assert [text_of(m) for m in emu.channel_messages(dm)] == [
        "Your invoice is attached to your account page."
    ]


async def test_a_button_too_long_for_a_custom_id_is_left_out_not_the_message(world, adapters, caplog):
    """Discord's custom ids hold 100 characters. A Teach offer whose Attach button names a gap of a
    large database and a 64-character article cannot fit one: the offer still arrives (its text says
    the command that does the same), with its other buttons, and the log says which was left out."""
    emu = world.emu
    adapter, _ = await connect(world, adapters)
    channel = emu.add_channel(world.guild, "staff-lessons")
    too_long = "g1234567-7-674a3f10:" + "a" * 64
    delivery = Delivery(
        conversation=Conversation(platform=Platform.DISCORD, channel_id=channel.id),
        message=OutboundMessage(
            text="Attach to another article: `/support kb teach g1234567-7-674a3f10 attach <article id>`",
            buttons=(
                Button(action_id="kb.gap:attach", label="Attach", value=too_long),
                Button(action_id="kb.gap:draft", label="Draft new article", value="g1234567-7-674a3f10"),
            ),
        ),
    )
    ref = await adapter.send(delivery)
    (posted_message,) = emu.channel_messages(channel)
    assert ref.message_id == posted_message["id"]
    assert posted_message["content"].startswith("Attach to another article")
    labels = [c["label"] for row in posted_message["components"] for c in row["components"]]
    assert labels == ["Draft new article"]
    assert "kb.gap:attach" in caplog.text
