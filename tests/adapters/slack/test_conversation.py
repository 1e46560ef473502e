"""The whole support conversation on Slack, through the real slack-bolt/slack-sdk and the emulator:
question → answer → escalation → staff claim in #staff → relay both ways → close with the
customer's confirmation → rating."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from storage.models import Ticket
from tests.adapters.slack.harness import (
    COMMUNITY,
    CUSTOMER,
    OTHER,
    STAFF,
    STAFF_CHANNEL,
    STAFF_GROUP,
    SlackBot,
)
from tests.emulators.slack import Call, SlackEmulator


async def posted(slack: SlackEmulator, channel: str, containing: str, *, thread: str | None = None) -> Call:
    """The bot's post in `channel` (in `thread`, when given) that contains the text."""

    def matches(call: Call) -> bool:
        in_thread = thread is None or call.params.get("thread_ts") == thread
        return call.params["channel"] == channel and in_thread and containing in call.shown

    return await slack.wait_for("chat.postMessage", matches)


async def private_answer(slack: SlackEmulator, user: str, containing: str) -> Call:
    return await slack.wait_for("response_url", lambda c: c.params["user"] == user and containing in c.shown)


def stored(slack: SlackEmulator, call: Call) -> dict[str, Any]:
    return slack.message(call.params["channel"], call.response["ts"])


async def tickets(bot: SlackBot) -> list[Ticket]:
    async with bot.bot.database.session() as session:
        return list((await session.execute(select(Ticket).order_by(Ticket.number))).scalars())


async def test_the_whole_support_conversation(bot: SlackBot, slack: SlackEmulator) -> None:
    # Casey asks in #community; the answer comes in the question's thread, with feedback buttons.
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "my csv export failed")
    thread = question.ts
    answer = await posted(slack, COMMUNITY, "Retry from *Data → Exports*", thread=thread)
    assert answer.params["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "An export failed"},
    }

    # It did not help: Casey asks for more, and the team is brought in on #staff.
    await slack.click(CUSTOMER, COMMUNITY, stored(slack, answer), answer.button("I still need help"))
    await posted(slack, COMMUNITY, "ticket *#1*", thread=thread)
    card = await posted(slack, STAFF_CHANNEL, "Ticket #1")
    assert card.params["blocks"][0]["text"]["text"] == f"<!subteam^{STAFF_GROUP}>", (
        "on-call is pinged on purpose"
    )
    assert "<!subteam" not in "".join(card.shown.split("\n")[1:]), "and nothing else pings"
    assert "the customer said the answer didn't help" in card.shown
    card_ts = card.response["ts"]

    # Casey adds detail in the thread: relayed to a thread on the staff card.
    await slack.user_posts(CUSTOMER, COMMUNITY, "it fails with error 500 <!channel>", thread_ts=thread)
    relayed = await posted(slack, STAFF_CHANNEL, "error 500", thread=card_ts)
    assert "Casey:*" in relayed.shown
    assert "<!channel>" not in relayed.shown + relayed.params["text"], "relayed text cannot ping #staff"
    assert "error 500 @channel" in relayed.shown

    # Sam claims with the card's button; Casey is told who has it.
    await slack.click(STAFF, STAFF_CHANNEL, stored(slack, card), card.button("Claim"))
    await posted(slack, COMMUNITY, "picked up ticket *#1*", thread=thread)

    # Sam answers in the staff thread; Casey reads it in her thread.
    await slack.user_posts(
        STAFF, STAFF_CHANNEL, "We fixed the export worker, please try again", thread_ts=card_ts
    )
    await posted(slack, COMMUNITY, "We fixed the export worker", thread=thread)

    # Sam closes with a slash command in #staff; Casey is asked to confirm.
    ack = await slack.slash_command(STAFF, STAFF_CHANNEL, "/ticket close 1 worker fixed")
    assert ack.status == 200
    confirm = await posted(slack, COMMUNITY, "Did this solve it?", thread=thread)
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"

    # Robin cannot answer for Casey (told privately); Casey confirms and rates.
    await slack.click(OTHER, COMMUNITY, stored(slack, confirm), confirm.button("Yes"))
    refusal = await private_answer(slack, OTHER, "Only Casey can answer that")
    assert refusal.params["response_type"] == "ephemeral"
    await slack.click(CUSTOMER, COMMUNITY, stored(slack, confirm), confirm.button("Yes"))
    rating = await slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("thread_ts") == thread and any(b["type"] == "actions" for b in c.params["blocks"])
        ),
        since=slack.calls.index(confirm) + 1,
    )
    await posted(slack, STAFF_CHANNEL, "confirmed ticket #1 is solved", thread=card_ts)
    await slack.click(CUSTOMER, COMMUNITY, stored(slack, rating), rating.button("4"))
    await private_answer(slack, CUSTOMER, "Thanks for rating ticket #1 4/5")

    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how, ticket.rating) == ("closed", "confirmed", 4)
    assert ticket.requester_key == f"slack:{CUSTOMER}"
    await bot.settle()
    failures = [c for c in slack.calls if not c.ok and c.method != "users.info"]
    assert failures == [], "every Web API call the conversation needed was accepted by Slack's rules"


async def test_a_ticket_asked_for_in_a_private_channel_without_the_bot_carries_on_in_dms(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    # Slack sends a slash command from any channel, even one the bot was never invited to.
    slack.add_channel("G0PRIVATE", "secret-project", private=True, bot_member=False)
    await slack.slash_command(CUSTOMER, "G0PRIVATE", "/ticket new my csv export failed")

    dm = f"D{CUSTOMER[1:]}"
    told = await posted(slack, dm, "ticket *#1*")
    assert told.shown.startswith("I'm not allowed to post in the channel where you asked")
    card = await posted(slack, STAFF_CHANNEL, "Ticket #1")
    card_ts = card.response["ts"]
    await bot.settle()  # the card's thread is the ticket's once its post is recorded

    # Sam's answer in the staff thread reaches Casey's DMs; her reply there reaches the team.
    await slack.user_posts(STAFF, STAFF_CHANNEL, "Which file was it?", thread_ts=card_ts)
    await posted(slack, dm, "Which file was it?")
    await slack.user_posts(CUSTOMER, dm, "the March invoices")
    await posted(slack, STAFF_CHANNEL, "the March invoices", thread=card_ts)
    (ticket,) = await tickets(bot)
    assert (ticket.is_direct, ticket.channel_id) == (True, dm)


async def test_an_app_installed_without_im_write_still_tells_the_customer_their_ticket_number(
    bot: SlackBot, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An app installed before the manifest asked for `im:write` cannot open a DM: the command's
    own private answer says where the ticket stands, and the log says what to fix."""
    slack.add_channel("G0PRIVATE", "secret-project", private=True, bot_member=False)
    slack.fail_next("conversations.open", error="missing_scope")
    await slack.slash_command(CUSTOMER, "G0PRIVATE", "/ticket new my csv export failed")

    answer = await private_answer(slack, CUSTOMER, "#1")
    assert "ticket" in answer.shown.lower()
    assert any("im:write" in record.getMessage() for record in caplog.records)


async def test_a_customers_files_in_their_ticket_thread_reach_the_team_as_lines_with_links(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person")
    thread = question.ts
    await posted(slack, COMMUNITY, "ticket *#1*", thread=thread)
    card_ts = (await posted(slack, STAFF_CHANNEL, "Ticket #1")).response["ts"]

    # Casey adds a screenshot to her words: the team sees both, the file as a line with its page.
    screenshot = slack.shared_file(CUSTOMER, "export error.png", 833_536, "image/png")
    await slack.user_posts(CUSTOMER, COMMUNITY, "my export failed", thread_ts=thread, files=[screenshot])
    relayed = await posted(slack, STAFF_CHANNEL, "my export failed", thread=card_ts)
    assert f"📎 `export error.png` (814 KB, image/png): <{screenshot['permalink']}|open it>" in relayed.shown
    assert "files-pri" not in json.dumps(relayed.params), "no download URL that needs the bot's token"

    # A file alone, whatever it is called, arrives as its line, and pings nobody.
    log = slack.shared_file(CUSTOMER, "@everyone <!channel> **x**.log", 812, "text/plain")
    await slack.user_posts(CUSTOMER, COMMUNITY, "", thread_ts=thread, files=[log])
    alone = await posted(slack, STAFF_CHANNEL, ".log", thread=card_ts)
    assert alone.shown == (
        "*Casey:*\n📎 `@everyone &lt;!channel&gt; ∗∗x∗∗.log` (812 bytes, text/plain): "
        f"<{log['permalink']}|open it>"
    )
    assert "<!channel>" not in alone.shown + alone.params["text"]
    assert not [
        c for c in slack.calls if c.params.get("channel") == COMMUNITY and "only pass words" in c.shown
    ]


async def escalated_thread(slack: SlackEmulator) -> tuple[str, str]:
    """Casey asks for a person in #community: (her thread, the card's ts in #staff)."""
    question = await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person")
    await posted(slack, COMMUNITY, "ticket *#1*", thread=question.ts)
    card_ts = (await posted(slack, STAFF_CHANNEL, "Ticket #1")).response["ts"]
    return question.ts, card_ts


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


async def test_a_customers_screenshot_reaches_the_team_as_the_file_itself(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    thread, card_ts = await escalated_thread(slack)
    screenshot = slack.shared_file(CUSTOMER, "export error.png", len(PNG), "image/png", content=PNG)
    await slack.user_posts(CUSTOMER, COMMUNITY, "my export failed", thread_ts=thread, files=[screenshot])

    relayed = await posted(slack, STAFF_CHANNEL, "my export failed", thread=card_ts)
    assert "📎" not in relayed.shown, "the file itself, not its line"
    upload = await slack.wait_for("files.completeUploadExternal")
    (file,) = [u for u in slack.uploads if u.channel == STAFF_CHANNEL]
    assert (file.filename, file.thread_ts, file.data) == ("export error.png", card_ts, PNG)
    assert upload.params["channel_id"] == STAFF_CHANNEL
    assert [status for _, status in slack.downloads] == [200], "downloaded once, with the bot's token"
    assert not [c for c in slack.calls if slack.token in json.dumps(c.params)], "the token is in no message"


async def test_a_customers_file_too_large_or_not_downloadable_goes_as_its_line(
    bot: SlackBot, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    thread, card_ts = await escalated_thread(slack)
    # Over the 8 MB a relayed message may fetch: its size says so, and nothing is downloaded.
    video = slack.shared_file(CUSTOMER, "screen.mp4", 9 * 1024 * 1024, "video/mp4", content=b"\0" * 16)
    await slack.user_posts(CUSTOMER, COMMUNITY, "a video", thread_ts=thread, files=[video])
    big = await posted(slack, STAFF_CHANNEL, "a video", thread=card_ts)
    assert f"📎 `screen.mp4` (9 MB, video/mp4): <{video['permalink']}|open it>" in big.shown
    assert slack.downloads == []

    # Slack fails the download: the line goes instead, and the log says why, without the URL.
    slack.fail_next("files.download", status=500)
    log = slack.shared_file(CUSTOMER, "export.log", 812, "text/plain", content=b"x" * 812)
    await slack.user_posts(CUSTOMER, COMMUNITY, "the log", thread_ts=thread, files=[log])
    failed = await posted(slack, STAFF_CHANNEL, "the log", thread=card_ts)
    assert f"📎 `export.log` (812 bytes, text/plain): <{log['permalink']}|open it>" in failed.shown
    # Fetched, but Slack refuses the upload: the words went already, and the line follows them.
    slack.fail_next("files.upload", status=500)
    shot = slack.shared_file(CUSTOMER, "shot.png", len(PNG), "image/png", content=PNG)
    await slack.user_posts(CUSTOMER, COMMUNITY, "a shot", thread_ts=thread, files=[shot])
    await posted(slack, STAFF_CHANNEL, "a shot", thread=card_ts)
    note = await posted(slack, STAFF_CHANNEL, "shot.png", thread=card_ts)
    assert note.shown == f"📎 `shot.png` (16 KB, image/png): <{shot['permalink']}|open it>"
    # An app installed before the manifest asked for files:read gets the sign-in page, not the file.
    slack.without_files_read.add(slack.team_id)
    again = slack.shared_file(CUSTOMER, "again.log", 812, "text/plain", content=b"x" * 812)
    await slack.user_posts(CUSTOMER, COMMUNITY, "once more", thread_ts=thread, files=[again])
    refused = await posted(slack, STAFF_CHANNEL, "once more", thread=card_ts)
    assert f"📎 `again.log` (812 bytes, text/plain): <{again['permalink']}|open it>" in refused.shown
    assert [u for u in slack.uploads if u.channel == STAFF_CHANNEL] == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "answered 500" in logged and "files:read" in logged
    assert "files-pri" not in logged and slack.token not in logged


async def test_a_screenshot_with_the_words_that_ask_for_a_person_comes_with_the_card(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    screenshot = slack.shared_file(CUSTOMER, "error.png", len(PNG), "image/png", content=PNG)
    await slack.user_posts(CUSTOMER, COMMUNITY, "I want to talk to a person", files=[screenshot])
    card = await posted(slack, STAFF_CHANNEL, "Ticket #1")
    assert "📎" not in card.shown
    await slack.wait_for("files.completeUploadExternal")
    (file,) = [u for u in slack.uploads if u.channel == STAFF_CHANNEL]
    assert (file.filename, file.data) == ("error.png", PNG), "right under the card"


async def test_a_team_members_screenshot_in_the_staff_thread_reaches_the_customer_as_the_file_itself(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    thread, card_ts = await escalated_thread(slack)
    screenshot = slack.shared_file(STAFF, "where to click.png", len(PNG), "image/png", content=PNG)
    await slack.user_posts(STAFF, STAFF_CHANNEL, "click here", thread_ts=card_ts, files=[screenshot])

    answer = await posted(slack, COMMUNITY, "click here", thread=thread)
    assert "📎" not in answer.shown, "the file itself, not its line"
    await slack.wait_for("files.completeUploadExternal")
    (file,) = [u for u in slack.uploads if u.channel == COMMUNITY]
    assert (file.filename, file.thread_ts, file.data) == ("where to click.png", thread, PNG)
    assert [status for _, status in slack.downloads] == [200]
    await bot.settle()
    told = [c for c in slack.calls if c.params.get("channel") == STAFF_CHANNEL and "stay with" in c.shown]
    assert told == [], "the team is not told their file stayed with them"


async def test_a_team_members_file_too_large_reaches_the_customer_as_its_name(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    thread, card_ts = await escalated_thread(slack)
    video = slack.shared_file(STAFF, "how-to.mp4", 9 * 1024 * 1024, "video/mp4", content=b"\0" * 16)
    await slack.user_posts(STAFF, STAFF_CHANNEL, "watch this", thread_ts=card_ts, files=[video])

    answer = await posted(slack, COMMUNITY, "watch this", thread=thread)
    assert answer.shown.endswith(
        "📎 `how-to.mp4` (9 MB, video/mp4): could not be attached here; reply if you need it sent another way"
    ), "no link to the team's channel"
    assert slack.downloads == [] and slack.uploads == []
