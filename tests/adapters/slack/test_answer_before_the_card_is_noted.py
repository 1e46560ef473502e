"""A team member answering in the thread of a ticket's card before the bot has noted that thread
(it does so once the card is posted, in a transaction of its own, which a loaded machine or a slow
database delays by seconds): the answer still reaches the customer. A reply under a bot post that
is no ticket's card, with no card on its way, stays the team's own talk at once. Through the real
slack-bolt and the emulator."""

from __future__ import annotations

import logging

import pytest

from bot.core import dispatch
from bot.core.events import Delivery, OutboundMessage
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL, SlackBot
from tests.adapters.slack.test_conversation import posted
from tests.emulators.slack import SlackEmulator


@pytest.mark.usefixtures("slow_to_note_the_card")
async def test_a_team_members_answer_sent_before_the_bot_had_noted_the_cards_thread_reaches_the_customer(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person")
    await posted(slack, COMMUNITY, "ticket *#1*", thread=question.ts)
    card_ts = (await posted(slack, STAFF_CHANNEL, "Ticket #1")).response["ts"]

    # Sam answers under the card at once, while the bot is still noting its thread.
    await slack.user_posts(STAFF, STAFF_CHANNEL, "Which export, CSV or PDF?", thread_ts=card_ts)

    answer = await posted(slack, COMMUNITY, "Which export, CSV or PDF?", thread=question.ts)
    assert answer.shown == "*Sam (support team):*\nWhich export, CSV or PDF?"


async def test_a_reply_under_a_recent_bot_post_with_no_card_on_its_way_stays_with_the_team_at_once(
    bot: SlackBot, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """No card is on its way, so the reply cannot be an answer under one: it is the team's talk,
    taken at once, with nothing said to its writer and no later event of the channel held behind it."""
    staff = bot.bot.services.staff.staff_channel
    sent = await bot.bot.dispatcher.outbound.send(
        Delivery(conversation=staff, message=OutboundMessage(text="Status: exports are slow today"))
    )
    assert sent is not None
    caplog.set_level(logging.DEBUG, logger="bot.core.dispatch")

    await slack.user_posts(STAFF, STAFF_CHANNEL, "thanks, on it", thread_ts=sent.message_id)
    await bot.settle()

    assert [c.shown for c in slack.calls_to("chat.postMessage")] == ["Status: exports are slow today"]
    assert slack.calls_to("chat.postEphemeral") == [], "nothing to tell: it was never an answer"
    assert bot.outcomes.get("failed", 0) == 0
    assert not [r for r in caplog.records if "too early" in r.getMessage()], "taken at once"


async def test_a_reply_under_a_recent_bot_post_while_a_card_is_on_its_way_is_waited_on_and_its_writer_told(
    bot: SlackBot, slack: SlackEmulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a card is on its way (here: its post refused, so it is never noted), the bot cannot tell
    talk under a post of its own from an answer under that card noted late (its process killed right
    after posting it): after the last try the team member hears privately that nothing was passed on,
    so an answer is never dropped without a word."""
    monkeypatch.setattr(dispatch, "TOO_EARLY_DELAYS", (0.01, 0.01))
    staff = bot.bot.services.staff.staff_channel
    sent = await bot.bot.dispatcher.outbound.send(
        Delivery(conversation=staff, message=OutboundMessage(text="Status: exports are slow today"))
    )
    assert sent is not None
    slack.fail_next("chat.postMessage", error="channel_not_found", after=1)  # the card, after the reply
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person")
    await posted(slack, COMMUNITY, "ticket *#1*", thread=question.ts)
    await bot.settle()
    caplog.set_level(logging.DEBUG, logger="bot")

    await slack.user_posts(STAFF, STAFF_CHANNEL, "thanks, on it", thread_ts=sent.message_id)
    await bot.settle()

    posted_ok = [c.shown for c in slack.calls_to("chat.postMessage") if c.response.get("ok")]
    assert not [text for text in posted_ok if text.startswith("Ticket #1")], "the card never went out"
    assert bot.outcomes.get("failed", 0) == 0
    (told,) = slack.calls_to("chat.postEphemeral")
    assert told.params["user"] == STAFF and told.params["channel"] == STAFF_CHANNEL
    assert told.shown.startswith("I haven't passed this on to anyone"), told.shown
    retried = [r for r in caplog.records if "too early" in r.getMessage()]
    assert len(retried) == 3, "waited on: two tries again, then taken"
    (ignored,) = [r for r in caplog.records if "no ticket" in r.getMessage() and r.levelno == logging.INFO]
    assert getattr(ignored, "correlation_id", "-") != "-"


async def test_a_reply_under_an_old_bot_post_that_is_no_tickets_card_is_not_held_back(
    bot: SlackBot, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Talk under yesterday's digest is the team's at once: holding it for the card that might be
    about to be noted would hold every event of the staff channel behind it."""
    yesterday = f"{float(slack.next_ts()) - 86_400:.6f}"
    slack.history(STAFF_CHANNEL).append(
        {"type": "message", "ts": yesterday, "user": slack.bot_user_id, "text": "Yesterday's digest"}
    )
    caplog.set_level(logging.DEBUG, logger="bot.core.dispatch")

    await slack.user_posts(STAFF, STAFF_CHANNEL, "nice numbers", thread_ts=yesterday)
    await bot.settle()

    assert slack.calls_to("chat.postMessage") == []
    assert not [r for r in caplog.records if "too early" in r.getMessage()], "taken at once"
