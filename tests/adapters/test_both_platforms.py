"""Slack and Discord adapters in one bot process (both emulators): one ticket store, one staff
channel on Discord serving customers from both platforms, and one on Slack answering a Discord
customer, files and all."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.adapters.slack.adapter import SlackAdapter
from bot.core.events import Platform
from storage.db import Database
from storage.models import Ticket
from tests.adapters.discord.harness import DiscordWorld, custom_id, posted, start_bot, stop_bot, ticket_thread
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL, STAFF_GROUP, populate
from tests.emulators.discord import DiscordEmulator
from tests.emulators.slack import SlackEmulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def socket_adapter(slack: SlackEmulator) -> SlackAdapter:
    """The Slack adapter beside Discord's in one process, on Socket Mode (no web server)."""
    populate(slack)
    slack.default_via = "socket"
    return SlackAdapter(
        bot_token=slack.token,
        signing_secret=slack.signing_secret,
        app_token=slack.app_token,
        mode="socket",
        api_base=slack.base_url,
        staff_group_ids=[STAFF_GROUP],
        timeout=2.0,
    )


async def test_one_staff_channel_on_discord_serves_slack_and_discord_customers(
    database: Database, tmp_path: Path
) -> None:
    async with SlackEmulator() as slack, DiscordEmulator(route_limit=50) as emu:
        world = DiscordWorld.build(emu)
        bot, _ = await start_bot(world, database, tmp_path, adapters={Platform.SLACK: socket_adapter(slack)})
        try:
            # A customer on Slack and one on Discord both ask for a person.
            asked = await slack.user_posts(CUSTOMER, COMMUNITY, "can I talk to a human please")
            slack_ts = asked.ts
            await slack.wait_for(
                "chat.postMessage",
                lambda c: c.params.get("thread_ts") == slack_ts and "#1" in str(c.params.get("text")),
            )
            # On Slack the ticket stays in the thread under the message; on Discord it gets a
            # private thread of its own.
            await emu.user_says(world.casey, world.help, "I need a human, billing is wrong")
            room = await ticket_thread(emu, world.help, 2)
            assert room.type == 12
            await posted(emu, room.id, "ticket **#2**")

            # Both tickets land on the one staff channel, on Discord.
            slack_card = await posted(emu, world.staff.id, "Ticket #1")
            await posted(emu, world.staff.id, "Ticket #2")

            # Sam claims the Slack customer's ticket on Discord and answers in its staff thread:
            # the answer reaches the customer's thread on Slack.
            await emu.click(world.sam, slack_card, custom_id(slack_card, "Claim"))
            await slack.wait_for(
                "chat.postMessage",
                lambda c: c.params.get("thread_ts") == slack_ts and "picked up" in str(c.params.get("text")),
            )
            # The staff thread exists once the bot has posted in it (the claim notice).
            await emu.wait_for("POST", f"/channels/{world.staff.id}/messages/{slack_card['id']}/threads")
            await emu.user_says(world.sam, emu.channels[slack_card["id"]], "Refund is on its way")
            relayed = await slack.wait_for(
                "chat.postMessage",
                lambda c: c.params.get("thread_ts") == slack_ts and "Refund is on its way" in str(c.params),
            )
            assert relayed.params["channel"] == COMMUNITY

            # His screenshot there reaches her on Slack as the file itself, fetched from Discord.
            staff_thread = emu.channels[slack_card["id"]]
            receipt = emu.attachment(staff_thread, "receipt.png", len(PNG), "image/png", content=PNG)
            await emu.user_says(world.sam, staff_thread, "The receipt", attachments=[receipt])
            await slack.wait_for("files.completeUploadExternal")
            (sent,) = [u for u in slack.uploads if u.channel == COMMUNITY]
            assert (sent.filename, sent.thread_ts, sent.data) == ("receipt.png", slack_ts, PNG)

            # Her screenshot, shared on Slack, reaches the team on Discord as the file itself: the
            # Slack adapter downloads it (with Slack's token), the Discord one uploads it.
            shot = slack.shared_file(CUSTOMER, "error.png", len(PNG), "image/png", content=PNG)
            await slack.user_posts(CUSTOMER, COMMUNITY, "here is the error", thread_ts=slack_ts, files=[shot])
            shown = await posted(emu, slack_card["id"], "here is the error")
            (file,) = [u for u in emu.uploads if u.message_id == shown["id"]]
            assert (file.filename, file.data) == ("error.png", PNG)
            assert [status for _, status in slack.downloads] == [200]

            async with bot.database.session() as session:
                tickets = list((await session.execute(select(Ticket).order_by(Ticket.number))).scalars())
            assert [(t.number, t.requester_key, t.channel_id, t.thread_id) for t in tickets] == [
                (1, f"slack:{CUSTOMER}", COMMUNITY, slack_ts),
                (2, f"discord:{world.casey.id}", world.help.id, room.id),
            ]
        finally:
            await stop_bot(bot)


async def test_a_team_members_screenshot_on_slack_reaches_a_discord_customer_as_the_file_itself(
    database: Database, tmp_path: Path
) -> None:
    async with SlackEmulator() as slack, DiscordEmulator(route_limit=50) as emu:
        world = DiscordWorld.build(emu)
        bot, _ = await start_bot(
            world,
            database,
            tmp_path,
            adapters={Platform.SLACK: socket_adapter(slack)},
            staff_channel=f"slack:{STAFF_CHANNEL}",
            staff_user_ids=[f"slack:{STAFF}"],
            staff_role_ids=[f"slack:{STAFF_GROUP}"],
            oncall_mentions=[f"slack:{STAFF_GROUP}"],
        )
        try:
            # Casey asks for a person on Discord; the team has her card on Slack.
            await emu.user_says(world.casey, world.help, "I need a human, billing is wrong")
            room = await ticket_thread(emu, world.help, 1)
            card = await slack.wait_for(
                "chat.postMessage",
                lambda c: (
                    c.params.get("channel") == STAFF_CHANNEL and "Ticket #1" in str(c.params.get("text"))
                ),
            )

            # Sam answers under the card with a screenshot: the Slack adapter downloads it (with
            # Slack's token), the Discord one uploads it into Casey's ticket thread.
            shot = slack.shared_file(STAFF, "corrected invoice.png", len(PNG), "image/png", content=PNG)
            await slack.user_posts(
                STAFF, STAFF_CHANNEL, "Here is the corrected one", thread_ts=card.response["ts"], files=[shot]
            )
            shown = await posted(emu, room.id, "Here is the corrected one")
            assert shown["content"] == "**Sam (support team):**\nHere is the corrected one", "not its line"
            (file,) = [u for u in emu.uploads if u.message_id == shown["id"]]
            assert (file.filename, file.data) == ("corrected invoice.png", PNG)
            assert [status for _, status in slack.downloads] == [200]
        finally:
            await stop_bot(bot)
