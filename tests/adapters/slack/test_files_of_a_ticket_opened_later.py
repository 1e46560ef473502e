"""On Slack, through the real slack-bolt/slack-sdk and the emulator: a ticket opened after the
message that asked, by "I still need help" under the bot's answer or by a team member's 🎫 on the
message, brings that message's files to the team's card as the files themselves."""

from __future__ import annotations

import json

from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL, SlackBot
from tests.adapters.slack.test_conversation import posted, stored
from tests.emulators.slack import SlackEmulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


async def test_still_needing_help_brings_the_questions_screenshot_to_the_team(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """Casey's export failed, and she says so with a screenshot; the bot's answer does not help, and
    her "I still need help" brings the screenshot to the team, under the card."""
    screenshot = slack.shared_file(CUSTOMER, "export error.png", len(PNG), "image/png", content=PNG)
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "my csv export failed", files=[screenshot])
    answer = await posted(slack, COMMUNITY, "Retry from *Data → Exports*", thread=question.ts)
    assert slack.downloads == [], "an answer from the knowledge base downloads nothing"

    await slack.click(CUSTOMER, COMMUNITY, stored(slack, answer), answer.button("I still need help"))

    card = await posted(slack, STAFF_CHANNEL, "Ticket #1")
    assert "📎" not in card.shown, "the file itself, not its line"
    await slack.wait_for("files.completeUploadExternal")
    (file,) = [u for u in slack.uploads if u.channel == STAFF_CHANNEL]
    assert (file.filename, file.data) == ("export error.png", PNG)
    assert [status for _, status in slack.downloads] == [200], "downloaded when the ticket opened"
    assert not [c for c in slack.calls if slack.token in json.dumps(c.params)], "the token is in no message"


async def test_a_team_members_ticket_reaction_brings_the_messages_file_to_the_team(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    """Casey shares a screenshot with words the bot leaves to people; Sam's 🎫 on it opens her
    ticket, and the screenshot is under its card."""
    screenshot = slack.shared_file(CUSTOMER, "dashboard.png", len(PNG), "image/png", content=PNG)
    message = await slack.user_posts(
        CUSTOMER, COMMUNITY, "the dashboard shows yesterday's numbers", files=[screenshot]
    )
    await bot.settle()

    await slack.react(STAFF, COMMUNITY, message.ts, "ticket")

    card = await posted(slack, STAFF_CHANNEL, "Ticket #1")
    assert "yesterday's numbers" in card.shown and "📎" not in card.shown
    await slack.wait_for("files.completeUploadExternal")
    (file,) = [u for u in slack.uploads if u.channel == STAFF_CHANNEL]
    assert (file.filename, file.data) == ("dashboard.png", PNG)
