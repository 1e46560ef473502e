"""The Slack adapter end to end: real slack-bolt and slack-sdk, the Slack emulator, a real database.

Each test reads like what happens in Slack: someone writes, clicks or types a command; the bot
answers where Slack users expect it (in the thread, privately, in the staff channel).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.adapters.slack.adapter import SlackAdapter
from bot.app import StartupError, create_bot
from bot.core.context import HandlerContext
from bot.core.events import (
    ActionInvoked,
    Button,
    CommandInvoked,
    MessageReceived,
    OutboundMessage,
    Platform,
    SentRef,
)
from bot.core.router import Match, Router, command, pattern
from storage.db import Database
from storage.models import ProcessedEvent, Ticket
from tests.adapters.slack.harness import (
    COMMUNITY,
    CUSTOMER,
    DM,
    GROUP_STAFF,
    OTHER,
    STAFF,
    STAFF_CHANNEL,
    SlackBot,
    slack_bot,
)
from tests.emulators.slack import SlackEmulator, payload
from tests.harness import delivery_figures, make_settings

# -- test-only handlers --------------------------------------------------------------------------


def action_is(action_id: str):
    return lambda event: Match(1.0) if event.action_id == action_id else None


echo = Router("test-echo")


@echo.on(MessageReceived, pattern(r"^echo (?P<said>.+)$", score=1.0))
async def echo_back(event: MessageReceived, ctx: HandlerContext) -> None:
    await ctx.reply(f"{event.actor.name} said: {ctx.match.captures['said']}")


@echo.on(MessageReceived, pattern(r"^rate me$", score=1.0))
async def offer_rating(event: MessageReceived, ctx: HandlerContext) -> None:
    stars = tuple(Button(action_id="rate", label=f"{n}★", value=str(n)) for n in range(1, 6))
    await ctx.reply(OutboundMessage(text="How did we do?", buttons=stars))


@echo.on(ActionInvoked, action_is("rate"))
async def rated(event: ActionInvoked, ctx: HandlerContext) -> None:
    await ctx.reply(f"Thanks {event.actor.name}, you gave {event.value} stars.")


@echo.on(MessageReceived, pattern(r"^am i staff\??$", score=1.0))
async def who_am_i(event: MessageReceived, ctx: HandlerContext) -> None:
    await ctx.reply("yes, staff" if ctx.is_staff else "no, customer")


@echo.on(MessageReceived, pattern(r"^long please$", score=1.0))
async def long_answer(event: MessageReceived, ctx: HandlerContext) -> None:
    paragraph = "Restart the sync & check <settings> before you try again. " * 40
    await ctx.reply("\n\n".join(f"{i}. {paragraph}" for i in range(1, 60)))


@echo.on(MessageReceived, pattern(r"^menu please$", score=1.0))
async def offer_menu(event: MessageReceived, ctx: HandlerContext) -> None:
    choices = tuple(Button(action_id="pick", label=name, value=name) for name in ("tea", "coffee"))
    await ctx.reply(OutboundMessage(text="What would you like?", buttons=choices))


@echo.on(ActionInvoked, action_is("pick"))
async def picked(event: ActionInvoked, ctx: HandlerContext) -> None:
    assert event.message_id is not None
    clicked = SentRef(
        platform=event.platform,
        workspace_id=event.conversation.workspace_id,
        channel_id=event.conversation.channel_id,
        message_id=event.message_id,
    )
    await ctx.post(event.conversation, f"You picked {event.value}.", edit=clicked)


@echo.on(MessageReceived, pattern(r"^break please$", score=1.0))
async def breaks(event: MessageReceived, ctx: HandlerContext) -> None:
    raise RuntimeError("a bug in a handler")


gates: dict[str, asyncio.Event] = {}
"""What a test opens to let a slow test handler finish."""


@echo.on(CommandInvoked, command("slow"))
async def slow_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    await gates["slow"].wait()
    await ctx.reply(OutboundMessage(text="Done, that took a while.", private_to=event.actor))


@pytest.fixture
async def bot(slack: SlackEmulator, database: Database, tmp_path: object) -> AsyncIterator[SlackBot]:
    async with slack_bot(slack, database, tmp_path, routers=[echo]) as running:
        yield running


# -- conversations -------------------------------------------------------------------------------


async def test_a_question_in_a_channel_is_answered_in_its_thread(bot: SlackBot, slack: SlackEmulator) -> None:
    posted = await slack.user_posts(CUSTOMER, COMMUNITY, "hello")
    assert posted.ack.status == 200

    reply = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == posted.ts)
    assert reply.params["channel"] == COMMUNITY
    assert "Hi Casey!" in reply.shown
    assert reply.params["text"], "a fallback text is always set"


async def test_a_direct_message_is_answered_in_the_dm_not_in_a_thread(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    await slack.user_posts(CUSTOMER, DM, "help")

    reply = await slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == DM)
    assert "thread_ts" not in reply.params
    assert "How I can help" in reply.shown


async def test_a_reply_inside_a_thread_stays_in_that_thread(bot: SlackBot, slack: SlackEmulator) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo first")
    await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    follow_up = await slack.user_posts(CUSTOMER, COMMUNITY, "echo second", thread_ts=question.ts)

    reply = await slack.wait_for("chat.postMessage", lambda c: "second" in c.shown)
    assert reply.params["thread_ts"] == question.ts != follow_up.ts


async def test_a_mention_sent_as_message_and_app_mention_is_answered_once(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    event = slack.message_event(CUSTOMER, COMMUNITY, f"<@{slack.bot_user_id}> echo ping")
    mention = dict(event, type="app_mention")
    mention.pop("channel_type")
    await slack.send_event(slack.event_callback(event))
    await slack.send_event(slack.event_callback(mention, template="event_app_mention"))
    await bot.settle()

    replies = [c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == event["ts"]]
    assert [r.shown for r in replies] == ["Casey said: ping"]
    assert bot.outcomes.get("duplicate") == 1


async def test_the_bot_ignores_its_own_posts_other_bots_and_edits(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    own = slack.message_event(slack.bot_user_id, COMMUNITY, "echo from myself")
    other_bot = payload("event_message_bot")
    edit = payload("event_message_changed")
    for body in (slack.event_callback(own), other_bot, edit):
        assert (await slack.send_event(body)).status == 200
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo real")
    await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    await bot.settle()

    assert [c.shown for c in slack.calls_to("chat.postMessage")] == ["Casey said: real"]
    assert sum(bot.bot.dispatcher.outcomes.values()) == 1


async def test_relayed_text_cannot_ping_anyone(bot: SlackBot, slack: SlackEmulator) -> None:
    await slack.user_posts(
        CUSTOMER, COMMUNITY, "echo <!channel> <!here> <!subteam^S0STAFFGRP|@staff> & **bold**"
    )

    reply = await slack.wait_for("chat.postMessage")
    shown = reply.shown + reply.params["text"]
    assert "<!" not in shown
    assert "&lt;" not in shown or "@channel" in shown
    assert "*bold*" in reply.shown
    assert all(b["text"].get("verbatim") for b in reply.params["blocks"] if b["type"] == "section")


async def test_a_long_answer_is_split_within_slacks_limits(bot: SlackBot, slack: SlackEmulator) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "long please")

    first = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    await bot.settle()
    posts = [c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == question.ts]
    assert all(p.ok for p in posts), "the emulator rejects blocks over Slack's limits"
    sections = [b for p in posts for b in p.params["blocks"]]
    assert len(sections) > 40 and all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert "&amp;" in first.shown and "&lt;settings&gt;" in first.shown


async def test_staff_are_recognised_by_user_id_and_by_user_group(bot: SlackBot, slack: SlackEmulator) -> None:
    for user in (STAFF, GROUP_STAFF, OTHER):
        await slack.user_posts(user, DM, "am i staff?")
        await bot.settle()
    answers = [c.shown for c in slack.calls_to("chat.postMessage")]
    assert answers == ["yes, staff", "yes, staff", "no, customer"]
    assert len(slack.calls_to("users.info")) == 3, "each user is looked up once"


# -- commands ------------------------------------------------------------------------------------


async def test_a_slash_command_is_acked_at_once_while_its_handler_is_still_working(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    gate = gates["slow"] = asyncio.Event()
    started = time.perf_counter()
    ack = await slack.slash_command(CUSTOMER, COMMUNITY, "/slow")
    acked_after = time.perf_counter() - started
    assert ack.status == 200 and acked_after < 3.0
    assert not slack.calls_to("response_url"), "the handler has not finished yet"

    gate.set()
    answer = await slack.wait_for("response_url")
    assert answer.params["response_type"] == "ephemeral"
    assert "Done, that took a while." in answer.shown
    assert answer.params["user"] == CUSTOMER


async def test_support_help_answers_privately_through_the_response_url(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    ack = await slack.slash_command(CUSTOMER, COMMUNITY, "/support help")
    assert ack.status == 200

    answer = await slack.wait_for("response_url")
    assert answer.params["response_type"] == "ephemeral"
    assert "/support help" in answer.shown
    assert not slack.calls_to("chat.postMessage")


async def test_an_unknown_command_gets_a_private_hint(bot: SlackBot, slack: SlackEmulator) -> None:
    await slack.slash_command(CUSTOMER, COMMUNITY, "/frobnicate now")

    answer = await slack.wait_for("response_url")
    assert "I don't know the command `/frobnicate`" in answer.shown


async def test_a_customers_summary_like_a_staff_subcommand_opens_a_ticket(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    # "closed" and "notes" are near-spellings of the staff's `/ticket close` and `/ticket note`,
    # which a customer may not use: they are the customer's words, not a typo to correct.
    for summary in ("closed account still billed", "notes missing"):
        await slack.slash_command(CUSTOMER, COMMUNITY, f"/ticket {summary}")
        card = await slack.wait_for(
            "chat.postMessage", lambda c, s=summary: c.params["channel"] == STAFF_CHANNEL and s in c.shown
        )
        assert card.params["blocks"][1]["text"]["text"].endswith(summary)

    # A near-spelling of what the customer may use is still taken for a typo.
    await slack.slash_command(CUSTOMER, COMMUNITY, "/ticket stauts 1")
    hint = await slack.wait_for("response_url", lambda c: c.params["user"] == CUSTOMER)
    assert "Did you mean `/ticket status`?" in hint.shown


async def test_a_command_typed_with_no_break_spaces_reads_as_typed_with_spaces(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    # Option+Space on a Mac, or text pasted from a web page, puts a no-break space between words.
    await slack.slash_command(CUSTOMER, COMMUNITY, "/ticket my export fails")
    await slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL)

    await slack.slash_command(CUSTOMER, COMMUNITY, "/ticket status\u00a01")
    status = await slack.wait_for("response_url", lambda c: c.params["user"] == CUSTOMER)
    assert status.params["text"].startswith("Ticket #1: my export fails"), status.params["text"]

    await slack.slash_command(STAFF, STAFF_CHANNEL, "/ticket claim\u00a0\u3000100")
    refused = await slack.wait_for("response_url", lambda c: c.params["user"] == STAFF)
    assert "I couldn't find ticket #100." in refused.shown
    await bot.settle()
    assert [c.params["channel"] for c in slack.calls_to("chat.postMessage")] == [COMMUNITY, STAFF_CHANNEL], (
        "no ticket opened for the staff member's command"
    )


# -- buttons and reactions -----------------------------------------------------------------------


async def test_clicking_a_button_reaches_its_handler_with_the_value(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "rate me")
    card = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    stars = card.buttons
    assert [b["value"] for b in stars] == ["1", "2", "3", "4", "5"]
    assert len({b["action_id"] for b in stars}) == 5, "Slack needs unique action ids in a block"

    message = slack.message(COMMUNITY, card.response["ts"])
    ack = await slack.click(CUSTOMER, COMMUNITY, message, stars[3]["action_id"])
    assert ack.status == 200

    thanks = await slack.wait_for("chat.postMessage", lambda c: "stars" in c.shown)
    assert thanks.shown == "Thanks Casey, you gave 4 stars."
    assert thanks.params["thread_ts"] == question.ts


async def test_a_staff_ticket_reaction_turns_a_customer_message_into_a_ticket(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo my invoice shows the wrong currency")
    await bot.settle()
    mark = slack.mark()

    await slack.react(OTHER, COMMUNITY, question.ts, "ticket")
    await bot.settle()
    assert not [c for c in slack.calls[mark:] if c.method == "chat.postMessage"], (
        "customers cannot open tickets"
    )

    await slack.react(STAFF, COMMUNITY, question.ts, "ticket")
    card = await slack.wait_for(
        "chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL, since=mark
    )
    to_customer = await slack.wait_for(
        "chat.postMessage", lambda c: c.params["channel"] == COMMUNITY, since=mark
    )
    assert "my invoice shows the wrong currency" in card.shown, "the reacted message's text was fetched"
    assert [b["text"]["text"] for b in card.buttons] == ["Claim", "Close"]
    assert "ticket *#1*" in to_customer.shown
    assert to_customer.params["thread_ts"] == question.ts, "the customer hears about it in their thread"
    assert slack.calls_to("conversations.history")


async def test_a_click_can_update_the_message_it_was_on(bot: SlackBot, slack: SlackEmulator) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "menu please")
    menu = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)

    await slack.click(CUSTOMER, COMMUNITY, slack.message(COMMUNITY, menu.response["ts"]), "pick::1")

    update = await slack.wait_for("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (COMMUNITY, menu.response["ts"])
    assert slack.message(COMMUNITY, menu.response["ts"])["text"] == "You picked coffee."


async def test_a_failing_handler_apologises_privately_with_a_reference(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    await slack.user_posts(CUSTOMER, COMMUNITY, "break please")

    apology = await slack.wait_for("chat.postEphemeral")
    assert (apology.params["channel"], apology.params["user"]) == (COMMUNITY, CUSTOMER)
    assert "something went wrong on our side" in apology.shown
    assert "thread_ts" not in apology.params, "a top-level question gets its private answer beside it"
    assert not slack.calls_to("chat.postMessage"), "nobody else sees the apology"


async def test_a_ticket_reaction_on_a_thread_reply_answers_in_that_thread(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo the dashboard is slow")
    detail = await slack.user_posts(
        CUSTOMER, COMMUNITY, "echo since the update on monday", thread_ts=question.ts
    )
    await bot.settle()
    mark = slack.mark()

    await slack.react(STAFF, COMMUNITY, detail.ts, "ticket")

    card = await slack.wait_for(
        "chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL, since=mark
    )
    assert "since the update on monday" in card.shown
    told = await slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == COMMUNITY, since=mark)
    assert told.params["thread_ts"] == question.ts
    assert slack.calls_to("conversations.replies"), "a thread reply is found through conversations.replies"


async def test_a_ticket_reaction_in_a_tickets_own_threads_opens_no_second_ticket(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """Sam's 🎫 on Casey's follow-up in her ticket's thread, and on the bot's copy of it in the team's
    thread under the card: both are ticket #1's already. Sam is told so where he reacted, privately;
    no second ticket (none for the bot's own post), nothing posted twice."""
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person")
    card = await slack.wait_for(
        "chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL and "Ticket #1" in c.shown
    )
    detail = await slack.user_posts(CUSTOMER, COMMUNITY, "it says error 500", thread_ts=question.ts)
    copy = await slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == card.response["ts"] and "error 500" in c.shown,
    )
    await bot.settle()
    mark = slack.mark()

    await slack.react(STAFF, COMMUNITY, detail.ts, "ticket")
    await bot.settle()
    await slack.react(STAFF, STAFF_CHANNEL, copy.response["ts"], "ticket")
    await bot.settle()

    told = [c for c in slack.calls[mark:] if c.method == "chat.postEphemeral"]
    assert [(c.params["channel"], c.params["user"], c.params["thread_ts"]) for c in told] == [
        (COMMUNITY, STAFF, question.ts),
        (STAFF_CHANNEL, STAFF, card.response["ts"]),
    ]
    assert "part of that ticket already" in told[0].shown
    assert "in the team's thread of ticket #1" in told[1].shown
    assert not [c for c in slack.calls[mark:] if c.method == "chat.postMessage"], "no card, nothing twice"
    async with bot.bot.database.session() as session:
        assert (await session.execute(select(func.count()).select_from(Ticket))).scalar_one() == 1


async def test_a_ticket_reaction_on_the_bots_own_answer_opens_no_ticket(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """Sam's 🎫 on the bot's answer to Casey: Slack names the bot's user id (auth.test's) as its
    author, and the bot is nobody's requester. Sam alone is told why, beside the answer."""
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo the dashboard is slow")
    answer = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    await bot.settle()
    mark = slack.mark()

    await slack.react(STAFF, COMMUNITY, answer.response["ts"], "ticket")
    await bot.settle()

    told = [c for c in slack.calls[mark:] if c.method == "chat.postEphemeral"]
    assert [(c.params["channel"], c.params["user"]) for c in told] == [(COMMUNITY, STAFF)]
    assert "my own message" in told[0].shown
    assert not [c for c in slack.calls[mark:] if c.method == "chat.postMessage"], "no card, no answer"
    async with bot.bot.database.session() as session:
        assert (await session.execute(select(func.count()).select_from(Ticket))).scalar_one() == 0


# -- Socket Mode ---------------------------------------------------------------------------------


async def test_socket_mode_receives_events_commands_and_clicks(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with slack_bot(slack, database, tmp_path, mode="socket", routers=[echo]) as running:
        assert running.bot.web is None, "Socket Mode needs no public web server"
        assert slack.calls_to("apps.connections.open")

        question = await slack.user_posts(CUSTOMER, COMMUNITY, "rate me")
        assert question.ack.status == 200
        card = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)

        message = slack.message(COMMUNITY, card.response["ts"])
        await slack.click(CUSTOMER, COMMUNITY, message, card.buttons[4]["action_id"])
        await slack.wait_for("chat.postMessage", lambda c: "5 stars" in c.shown)

        ack = await slack.slash_command(CUSTOMER, COMMUNITY, "/support help")
        assert ack.latency_ms < 3000
        await slack.wait_for("response_url")

        retry = await slack.send_event(question.body, retry_num=1)
        assert retry.status == 200
        await running.settle()
        assert running.outcomes.get("duplicate") == 1


# -- retries and signatures ----------------------------------------------------------------------


async def test_the_first_request_after_a_start_does_not_hang_on_another_auth_test(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """The adapter checked the token at its start; Slack being slow to answer auth.test again must
    not fail the first question (slack-bolt's single-workspace check asked it on the first request,
    and a timeout there answered it 500)."""
    slack.fail_next("auth.test", timeout=True)
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo first")
    await slack.wait_for("chat.postMessage")
    await bot.settle()

    assert question.ack.status == 200
    assert bot.outcomes == {"handled": 1}


async def test_a_redelivered_event_is_handled_exactly_once(bot: SlackBot, slack: SlackEmulator) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo once")
    for retry in (1, 2, 3):
        assert (await slack.send_event(question.body, retry_num=retry)).status == 200
    await slack.wait_for("chat.postMessage")
    await bot.settle()

    assert len(slack.calls_to("chat.postMessage")) == 1
    assert bot.outcomes == {"handled": 1, "duplicate": 3}


async def test_a_redelivery_reaching_a_second_bot_process_is_handled_once(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with (
        slack_bot(slack, database, tmp_path, routers=[echo]) as first,
        slack_bot(slack, database, tmp_path, routers=[echo]) as second,
    ):
        first_url = f"http://127.0.0.1:{first.bot.web.port}/slack/events"  # type: ignore[union-attr]
        second_url = f"http://127.0.0.1:{second.bot.web.port}/slack/events"  # type: ignore[union-attr]
        slack.bot_url = first_url
        question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo across processes")
        slack.bot_url = second_url
        await slack.send_event(question.body, retry_num=1)
        await first.settle()
        await second.settle()

    assert len(slack.calls_to("chat.postMessage")) == 1
    assert first.outcomes.get("handled", 0) + second.outcomes.get("handled", 0) == 1
    assert first.outcomes.get("duplicate", 0) + second.outcomes.get("duplicate", 0) == 1


async def count_processed(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one())


@pytest.mark.parametrize(
    "how",
    [
        {"secret": "not-the-signing-secret"},
        {"timestamp": int(time.time()) - 10 * 60},
        {"headers": {"X-Slack-Signature": ""}},
    ],
    ids=["bad-signature", "stale-timestamp", "missing-signature"],
)
async def test_an_unsigned_or_stale_request_gets_401_and_nothing_happens(
    bot: SlackBot, slack: SlackEmulator, database: Database, how: dict
) -> None:
    body = slack.event_callback(slack.message_event(CUSTOMER, COMMUNITY, "echo forged"))
    answer = await slack.post_signed(json.dumps(body).encode(), content_type="application/json", **how)

    assert answer.status == 401
    await bot.settle()
    assert sum(bot.bot.dispatcher.outcomes.values()) == 0
    assert await count_processed(database) == 0
    assert not [c for c in slack.calls if c.method != "auth.test"]


async def test_a_person_mentioned_by_id_is_relayed_by_name(bot: SlackBot, slack: SlackEmulator) -> None:
    await slack.user_posts(CUSTOMER, COMMUNITY, f"echo ask <@{OTHER}> about it")

    reply = await slack.wait_for("chat.postMessage")
    assert reply.shown == "Casey said: ask @Robin about it"


# -- Web API failures ----------------------------------------------------------------------------


async def test_a_429_is_waited_out_and_the_reply_still_arrives(bot: SlackBot, slack: SlackEmulator) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    await slack.user_posts(CUSTOMER, COMMUNITY, "echo patience")

    reply = await slack.wait_for("chat.postMessage")
    attempts = slack.calls_to("chat.postMessage")
    assert [a.status for a in attempts] == [429, 200]
    assert reply.at - attempts[0].at >= 1.0, "Retry-After was honoured"
    assert time.monotonic() - started < 5
    await bot.settle()
    # slack-sdk waited the 429 out itself; the metrics count it all the same.
    assert delivery_figures(bot.bot, Platform.SLACK) == {"sent": 1, "failed": 0, "429s": 1, "retries": 1}


async def test_a_429_the_client_gives_up_on_is_retried_after_retry_after(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with slack_bot(slack, database, tmp_path, routers=[echo], rate_limit_retries=0) as running:
        slack.fail_next("chat.postMessage", status=429, retry_after=1)
        await slack.user_posts(CUSTOMER, COMMUNITY, "echo later")

        reply = await slack.wait_for("chat.postMessage")
        limited, sent = slack.calls_to("chat.postMessage")
        assert (limited.status, sent.status) == (429, 200)
        assert sent.at - limited.at >= 1.0, "the outbound retry waited Retry-After, not its own backoff"
        assert reply.shown == "Casey said: later"
        await running.settle()
        # Counted once: by the bot's own retry, since the client gave up on it.
        figures = delivery_figures(running.bot, Platform.SLACK)
        assert figures == {"sent": 1, "failed": 0, "429s": 1, "retries": 1}


async def test_429s_the_client_waits_out_and_one_it_gives_up_on_are_each_counted_once(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with slack_bot(slack, database, tmp_path, routers=[echo], rate_limit_retries=1) as running:
        slack.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
        await slack.user_posts(CUSTOMER, COMMUNITY, "echo twice limited")

        await slack.wait_for("chat.postMessage", timeout=10)
        await running.settle()
        assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
        figures = delivery_figures(running.bot, Platform.SLACK)
        assert figures == {"sent": 1, "failed": 0, "429s": 2, "retries": 2}


async def test_server_errors_and_timeouts_are_retried(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with slack_bot(slack, database, tmp_path, routers=[echo], timeout=1.0) as running:
        slack.fail_next("chat.postMessage", status=503)
        slack.fail_next("chat.postMessage", timeout=True)
        await slack.user_posts(CUSTOMER, COMMUNITY, "echo eventually")

        reply = await slack.wait_for("chat.postMessage", timeout=10)
        assert reply.shown == "Casey said: eventually"
        assert [(c.status, c.error) for c in slack.calls_to("chat.postMessage")] == [
            (503, "internal_error"),
            (504, "timeout"),
            (200, None),
        ]
        await running.settle()


async def test_a_reply_slack_posted_but_never_confirmed_is_not_posted_again(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with slack_bot(slack, database, tmp_path, routers=[echo], timeout=1.0) as running:
        slack.fail_next("chat.postMessage", timeout=True, applied=True)
        question = await slack.user_posts(CUSTOMER, COMMUNITY, "echo only once")

        await slack.wait_for("conversations.replies", timeout=10)
        await running.settle()

        replies = [m for m in slack.history(COMMUNITY) if m.get("thread_ts") == question.ts]
        assert [m["text"] for m in replies] == ["Casey said: only once"]
        assert [c.error for c in slack.calls_to("chat.postMessage")] == ["timeout"]


async def test_a_permanent_error_is_reported_to_staff_once_and_not_retried(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    slack.add_channel("C0ARCHIVED", "old-help", archived=True)
    for text in ("echo one", "echo two"):
        slack.history("C0ARCHIVED")  # the channel exists; posting into it is what fails
        await slack.user_posts(CUSTOMER, "C0ARCHIVED", text)
    await bot.settle()

    attempts = slack.calls_to("chat.postMessage")
    to_archived = [c for c in attempts if c.params["channel"] == "C0ARCHIVED"]
    assert [c.error for c in to_archived] == ["is_archived", "is_archived"], "one attempt per reply"
    notices = [c for c in attempts if c.params["channel"] == STAFF_CHANNEL]
    assert len(notices) == 1
    assert "C0ARCHIVED" in notices[0].shown and "(channel_gone)" in notices[0].shown


async def test_the_bot_joins_a_public_channel_it_was_not_in(bot: SlackBot, slack: SlackEmulator) -> None:
    slack.add_channel("C0RANDOM", "random", bot_member=False)
    question = await slack.user_posts(CUSTOMER, "C0RANDOM", "echo hello there")

    reply = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    assert reply.shown == "Casey said: hello there"
    assert [c.method for c in slack.calls if c.method in ("chat.postMessage", "conversations.join")] == [
        "chat.postMessage",
        "conversations.join",
        "chat.postMessage",
    ]


async def test_a_rejected_token_stops_start_up_with_one_clear_line(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    adapter = SlackAdapter(bot_token="xoxb-revoked", signing_secret="s", api_base=slack.base_url)
    bot = await create_bot(
        make_settings(tmp_path, web_port=0),
        adapters={Platform.SLACK: adapter},
        database=database,
        with_web=True,
    )
    try:
        with pytest.raises(StartupError, match=r"^slack: Slack rejected the bot token: invalid_auth$"):
            await bot.start()
    finally:
        await bot.stop()


async def test_slacks_url_verification_challenge_is_answered(bot: SlackBot, slack: SlackEmulator) -> None:
    """What Slack sends when the request URL is saved in the app settings."""
    body = {
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    answer = await slack.post_signed(json.dumps(body).encode(), content_type="application/json")
    assert answer.status == 200
    assert body["challenge"] in answer.body


# -- shutting down -------------------------------------------------------------------------------


async def test_a_stopping_bot_answers_what_it_accepted_and_turns_new_requests_away(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    async with slack_bot(slack, database, tmp_path, routers=[echo]) as running:
        accepted = await slack.user_posts(CUSTOMER, COMMUNITY, "echo before the restart")
        await running.adapter.stop_receiving()  # the first step of bot.stop()
        turned_away = await slack.user_posts(CUSTOMER, COMMUNITY, "echo during the restart")
        await running.bot.dispatcher.drain()

        assert (accepted.ack.status, turned_away.ack.status) == (200, 503)
        shown = [c.shown for c in slack.calls_to("chat.postMessage") if c.ok]
        assert shown == ["Casey said: before the restart"]
        # Not claimed: when Slack retries it (to another process, or to this one restarted), the
        # retry is handled as a new event, not dropped as a duplicate.
        assert await count_processed(database) == 1


async def test_a_message_arriving_while_the_bot_stops_is_left_for_slack_to_retry(
    slack: SlackEmulator, database: Database, tmp_path: object
) -> None:
    release = asyncio.Event()
    slow = Router("test-slow")

    @slow.on(MessageReceived, pattern(r"^slow$", score=1.0))
    async def slow_answer(event: MessageReceived, ctx: HandlerContext) -> None:
        await release.wait()
        await ctx.reply("done, slowly")

    async with slack_bot(slack, database, tmp_path, routers=[slow, echo]) as running:
        await slack.user_posts(CUSTOMER, COMMUNITY, "slow")
        await running.adapter.drain()  # the slow question is in the bot's queue
        stopping = asyncio.create_task(running.bot.stop())
        await asyncio.sleep(0.05)  # stop() is now waiting for the queue to empty
        late = await slack.user_posts(CUSTOMER, COMMUNITY, "echo are you there?")
        release.set()
        await stopping

    assert late.ack.status == 503, "refused, so Slack retries it elsewhere instead of it being lost"
    assert [c.shown for c in slack.calls_to("chat.postMessage") if c.ok] == ["done, slowly"]
