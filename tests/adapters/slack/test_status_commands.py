"""Ending maintenance and changing an incident's impact typed on Slack, end to end through slack-bolt:
what a subscribed channel receives (title, text, no pings) and the errors a person sees."""

from __future__ import annotations

from bot.status.model import Impact
from storage import status_repo
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL, SlackBot
from tests.emulators.slack import SlackEmulator

PINGS = "@everyone @here <!channel> <!subteam^S0STAFFGRP>"
SPECIAL = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^")


async def _subscribed(bot: SlackBot, slack: SlackEmulator) -> None:
    await slack.slash_command(STAFF, COMMUNITY, "/subscribe payments")
    await slack.wait_for("chat.postMessage", lambda c: "Subscribed this channel" in str(c.params))
    await bot.settle()


async def _deliver(bot: SlackBot) -> None:
    await bot.settle()
    assert bot.bot.broadcaster is not None
    await bot.bot.broadcaster.run_until_idle(limit_s=20)


def _pings(text: str) -> list[str]:
    return [s for s in SPECIAL if s in text]


async def test_a_slack_impact_change_reaches_the_subscribed_channel_without_pings(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    await _subscribed(bot, slack)
    await slack.slash_command(STAFF, STAFF_CHANNEL, "/incident open payments minor Slow cards")
    await _deliver(bot)
    await slack.slash_command(
        STAFF, STAFF_CHANNEL, f"/incident update 1 identified impact=critical Cards now fail {PINGS}"
    )
    await slack.wait_for("chat.postMessage", lambda c: "Updated (identified)" in str(c.params))
    await _deliver(bot)

    async with bot.bot.database.session() as session:
        (incident,) = await status_repo.active_incidents(session)
        payments = await status_repo.get_component(session, name="payments")
    assert incident.impact == Impact.CRITICAL
    assert payments is not None and payments.status == "major_outage"
    sent = [c for c in slack.calls_to("chat.postMessage") if c.ok and "Cards now fail" in str(c.params)]
    assert sent, "the update reached the subscribed channel"
    for call in sent:
        assert call.params["channel"] == COMMUNITY
        assert _pings(str(call.params)) == [], call.params
    edits = [c for c in slack.calls_to("chat.update") if "Slow cards" in str(c.params)]
    assert edits and "critical" in str(edits[-1].params)


async def test_ending_maintenance_on_slack_tells_the_channel_and_the_note_pings_nobody(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    await _subscribed(bot, slack)
    await slack.slash_command(
        STAFF,
        STAFF_CHANNEL,
        "/maintenance schedule payments 2027-06-01T02:00Z 2027-06-01T03:00Z Database upgrade",
    )
    await _deliver(bot)
    await slack.slash_command(STAFF, STAFF_CHANNEL, f"/maintenance end 1 Moved to next week {PINGS}")
    await slack.wait_for("chat.postMessage", lambda c: "Cancelled maintenance" in str(c.params))
    await _deliver(bot)

    (notice,) = [m for m in slack.history(COMMUNITY) if "Moved to next week" in str(m)]
    assert "[Maintenance cancelled] Database upgrade" in str(notice)
    assert _pings(str(notice)) == [], notice


async def test_slack_status_commands_with_an_unknown_number_or_from_a_customer_are_refused(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    await slack.slash_command(STAFF, STAFF_CHANNEL, "/maintenance end 42")
    assert "There is no maintenance window #42" in (await slack.wait_for("response_url")).shown
    mark = slack.mark()
    await slack.slash_command(STAFF, STAFF_CHANNEL, "/incident update 42 identified impact=major x")
    answer = await slack.wait_for("response_url", since=mark)
    assert "There is no incident #42" in answer.shown
    mark = slack.mark()
    await slack.slash_command(CUSTOMER, COMMUNITY, "/maintenance end 1 hi")
    assert "for the support team only" in (await slack.wait_for("response_url", since=mark)).shown
    mark = slack.mark()
    await slack.slash_command(CUSTOMER, COMMUNITY, "/incident update 1 identified impact=none x")
    assert "for the support team only" in (await slack.wait_for("response_url", since=mark)).shown


async def test_on_slack_an_incident_is_reopened_in_its_thread_then_given_a_postmortem_told_to_nobody(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    await _subscribed(bot, slack)
    for line, reply in (
        ("/incident open payments minor Slow cards", "Opened incident"),
        ("/incident resolve 1 Back", "Resolved incident"),
        ("/incident update 1 identified Slow again", "Reopened (identified) incident"),
        ("/incident resolve 1 Back for good", "Resolved incident"),
    ):
        mark = slack.mark()
        await slack.slash_command(STAFF, STAFF_CHANNEL, line)
        await slack.wait_for("chat.postMessage", lambda c, r=reply: r in str(c.params), since=mark)
        await _deliver(bot)
    (reopened,) = [m for m in slack.history(COMMUNITY) if "Slow again" in str(m)]
    assert "Reopened #1: Slow cards" in str(reopened) and reopened.get("thread_ts"), reopened

    mark = slack.mark()
    postmortem = f"A config change slowed the card processor.\nRolled out slowly now {PINGS}"
    await slack.slash_command(STAFF, STAFF_CHANNEL, f"/incident postmortem 1 {postmortem}")
    answer = await slack.wait_for(
        "chat.postMessage", lambda c: "Published the postmortem" in str(c.params), since=mark
    )
    assert answer.params["channel"] == STAFF_CHANNEL
    await _deliver(bot)
    assert not [c for c in slack.calls[mark:] if c.params.get("channel") == COMMUNITY], "nothing broadcast"
    async with bot.bot.database.session() as session:
        incident = await status_repo.get_incident(session, incident_id=1)
    assert incident is not None and incident.postmortem_body is not None
    assert incident.postmortem_body.startswith(postmortem.split(" @")[0]), "its lines as typed"
