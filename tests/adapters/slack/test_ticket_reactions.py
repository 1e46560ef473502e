"""A team member's 🎫 on Slack when Slack cannot say which message it is on.

Slack's `reaction_added` names the message only by channel and timestamp: the bot learns its text,
and whether it is a reply in a thread, by reading it (conversations.history, then .replies). When
that read fails the bot cannot tell a reply in a ticket's thread from a message of its own, so it
opens no ticket blind; the team member hears so, privately, and a 🎫 added again works.
"""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import Ticket
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL, SlackBot
from tests.emulators.slack import Posted, SlackEmulator

READS_PER_REACTION = 2
"""A failed read is tried once more; each try starts with conversations.history."""


async def _casey_follows_up_in_her_ticket(bot: SlackBot, slack: SlackEmulator) -> tuple[Posted, Posted]:
    """Casey asks for a person (ticket #1, in the thread under her question), then adds a detail."""
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person")
    await slack.wait_for(
        "chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL and "Ticket #1" in c.shown
    )
    detail = await slack.user_posts(CUSTOMER, COMMUNITY, "it says error 500", thread_ts=question.ts)
    await bot.settle()
    return question, detail


async def _tickets(bot: SlackBot) -> int:
    async with bot.bot.database.session() as session:
        return (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()


async def test_a_ticket_reaction_whose_message_slack_will_not_give_opens_no_second_ticket(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """Slack fails every read of Casey's follow-up: Sam's 🎫 on it opens no ticket; Sam alone is told
    the bot could not read the message and to add the 🎫 again. Once Slack answers, he does, and
    hears the message is ticket #1's already."""
    question, detail = await _casey_follows_up_in_her_ticket(bot, slack)
    slack.fail_next("conversations.history", status=500, times=READS_PER_REACTION)
    mark = slack.mark()

    await slack.react(STAFF, COMMUNITY, detail.ts, "ticket")
    await bot.settle()

    told = [c for c in slack.calls[mark:] if c.method == "chat.postEphemeral"]
    assert [(c.params["channel"], c.params["user"]) for c in told] == [(COMMUNITY, STAFF)]
    assert "couldn't read that message" in told[0].shown
    assert "add the 🎫 again" in told[0].shown
    assert not [c for c in slack.calls[mark:] if c.method == "chat.postMessage"], "no card, no answer"
    assert await _tickets(bot) == 1

    mark = slack.mark()  # Slack answers again
    await slack.react(STAFF, COMMUNITY, detail.ts, "ticket")
    await bot.settle()

    told = [c for c in slack.calls[mark:] if c.method == "chat.postEphemeral"]
    assert [c.params.get("thread_ts") for c in told] == [question.ts]
    assert "part of that ticket already" in told[0].shown
    assert await _tickets(bot) == 1


async def test_a_ticket_reaction_whose_first_read_fails_is_read_again(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """One failed read (a timeout) is tried again before the bot gives up on the message: Sam's 🎫
    on Casey's follow-up is answered as if nothing had failed."""
    question, detail = await _casey_follows_up_in_her_ticket(bot, slack)
    slack.fail_next("conversations.history", timeout=True)
    mark = slack.mark()

    await slack.react(STAFF, COMMUNITY, detail.ts, "ticket")
    await bot.settle()

    told = [c for c in slack.calls[mark:] if c.method == "chat.postEphemeral"]
    assert [(c.params["user"], c.params.get("thread_ts")) for c in told] == [(STAFF, question.ts)]
    assert "part of that ticket already" in told[0].shown
    assert await _tickets(bot) == 1


async def test_a_ticket_reaction_in_the_team_thread_when_slack_cannot_be_read_opens_no_ticket(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """Sam's own note in the team's thread under ticket #1's card, 🎫'd while Slack fails every read:
    no ticket for Sam's words, and Sam hears why."""
    await _casey_follows_up_in_her_ticket(bot, slack)
    card = await slack.wait_for(
        "chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL and "Ticket #1" in c.shown
    )
    note = await slack.user_posts(
        STAFF, STAFF_CHANNEL, "checking the logs now", thread_ts=card.response["ts"]
    )
    await bot.settle()
    slack.fail_next("conversations.history", error="internal_error", times=READS_PER_REACTION)
    mark = slack.mark()

    await slack.react(STAFF, STAFF_CHANNEL, note.ts, "ticket")
    await bot.settle()

    told = [c for c in slack.calls[mark:] if c.method == "chat.postEphemeral"]
    assert [(c.params["channel"], c.params["user"]) for c in told] == [(STAFF_CHANNEL, STAFF)]
    assert "couldn't read that message" in told[0].shown
    assert not [c for c in slack.calls[mark:] if c.method == "chat.postMessage"]
    assert await _tickets(bot) == 1
