"""An incident reaches a Slack channel and a Discord channel through the real adapters and the
emulators: the first notice, the update threaded under it (Slack `thread_ts`, a Discord thread on the
notice), the notice edited to show the current state, and a channel the bot was removed from."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from bot.adapters.discord.adapter import DiscordAdapter
from bot.adapters.slack.adapter import SlackAdapter
from bot.app import create_bot
from bot.core.events import Platform
from storage import subscriptions_repo
from storage.db import Database
from tests.emulators.discord import Channel, DiscordEmulator, Guild
from tests.emulators.slack import SlackEmulator
from tests.fake_adapter import FakeAdapter
from tests.harness import BotHarness, FakeClock, make_settings
from tests.status.conftest import deliver


@dataclass
class World:
    bot: BotHarness
    slack: SlackEmulator
    discord: DiscordEmulator
    guild: Guild
    news: Channel


async def _noop(_event: object) -> None:
    return None


@pytest.fixture
async def world(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with SlackEmulator() as slack, DiscordEmulator() as discord_emu:
        slack.add_channel("C0NEWS", "news")
        slack.add_channel("C0GONE", "gone", bot_member=False, private=True)
        guild = discord_emu.add_guild("Acme")
        news = discord_emu.add_channel(guild, "status")
        slack_adapter = SlackAdapter(
            bot_token=slack.token, signing_secret=slack.signing_secret, api_base=slack.base_url
        )
        slack_adapter.install_routes(web.Application())  # this test only sends
        discord_adapter = DiscordAdapter(
            token=discord_emu.token,
            api_base=discord_emu.api_base,
            gateway_url=discord_emu.gateway_url,
            guild_ready_timeout=0.05,
            ready_timeout=10,
            sync_commands=False,
        )
        await slack_adapter.start(_noop)
        await discord_adapter.start(_noop)
        fake = FakeAdapter(Platform.CONSOLE)
        clock = FakeClock()
        app = await create_bot(
            make_settings(tmp_path),
            adapters={
                Platform.CONSOLE: fake,
                Platform.SLACK: slack_adapter,
                Platform.DISCORD: discord_adapter,
            },
            clock=clock,
            database=database,
            with_web=False,
        )
        await fake.start(app.dispatcher.submit)
        async with database.transaction() as session:
            for platform, workspace, channel in (
                ("slack", slack.team_id, "C0NEWS"),
                ("slack", slack.team_id, "C0GONE"),
                ("discord", guild.id, news.id),
            ):
                await subscriptions_repo.subscribe(
                    session,
                    platform=platform,
                    workspace_id=workspace,
                    channel_id=channel,
                    is_direct=False,
                    components=[],
                    actor_key="console:S1",
                )
        try:
            yield World(BotHarness(app, fake, clock), slack, discord_emu, guild, news)
        finally:
            await discord_adapter.stop()
            await slack_adapter.stop()


async def test_an_incident_on_slack_and_discord(world: World) -> None:
    bot, slack, discord_emu = world.bot, world.slack, world.discord
    await bot.staff_runs("/incident open payments major Card payments failing")
    await deliver(bot)

    (notice,) = slack.history("C0NEWS")
    assert "Card payments failing" in notice["text"]
    (first,) = discord_emu.channel_messages(world.news)
    assert "Card payments failing" in str(first)

    await bot.staff_runs("/incident update 1 identified A bad deploy; rolling back")
    await deliver(bot)

    replies = [c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == notice["ts"]]
    assert len(replies) == 1 and "A bad deploy" in replies[0].params["text"]
    (edited,) = [c for c in slack.calls_to("chat.update") if c.params.get("ts") == notice["ts"]]
    assert "[Identified] Card payments failing" in edited.params["text"]

    started = [
        c for c in discord_emu.calls if c.method == "POST" and c.path.endswith(f"/{first['id']}/threads")
    ]
    assert len(started) == 1, "the update opened a thread on the first notice"
    thread_posts = [
        c
        for c in discord_emu.calls
        if c.method == "POST"
        and c.path.endswith("/messages")
        and c.status == 200
        and "A bad deploy" in str(c.json)
    ]
    # Discord gives a thread started on a message that message's id: the update lands in it.
    assert [c.path for c in thread_posts] == [f"/channels/{first['id']}/messages"]
    (edit,) = [
        c for c in discord_emu.calls if c.method == "PATCH" and c.path.endswith(f"/messages/{first['id']}")
    ]
    assert "[Identified] Card payments failing" in str(edit.json)

    top_level = [m for m in slack.history("C0NEWS") if m.get("thread_ts") in (None, m["ts"])]
    assert top_level == [notice], "updates are in the thread, not the channel"
    assert [m for m in bot.staff_posts() if "`C0GONE`" in m.text and "turned off" in m.text]


async def test_an_announcement_pings_nobody(world: World) -> None:
    bot, slack, discord_emu = world.bot, world.slack, world.discord
    await bot.staff_runs("/announce @everyone @here <!channel> <@&123> v2.3 is out")
    await deliver(bot)

    (posted,) = [c for c in slack.calls_to("chat.postMessage") if c.ok and "v2.3 is out" in c.params["text"]]
    assert "<!channel>" not in posted.params["text"] and "<!everyone>" not in posted.params["text"]
    (sent,) = [c for c in discord_emu.calls if c.method == "POST" and "v2.3 is out" in str(c.json)]
    assert sent.json["allowed_mentions"] == {"users": [], "roles": [], "parse": []}


async def test_incident_times_reach_each_platform_as_its_own_time_token(world: World) -> None:
    bot, slack, discord_emu = world.bot, world.slack, world.discord
    await bot.staff_runs("/incident open payments major Card payments failing")
    await deliver(bot)
    bot.clock.advance(minutes=5)
    await bot.staff_runs("/incident update 1 identified A bad deploy; rolling back")
    await deliver(bot)
    update = int(datetime(2026, 11, 24, 9, 5, tzinfo=UTC).timestamp())

    (notice,) = [m for m in slack.history("C0NEWS") if m.get("thread_ts") in (None, m["ts"])]
    (edited,) = [c for c in slack.calls_to("chat.update") if c.params.get("ts") == notice["ts"]]
    card = str(edited.params["blocks"])
    # Every reader sees their own time; a client that cannot format it shows the UTC words.
    assert re.search(rf"<!date\^{update}\^\{{date_short_pretty\}} \{{time\}}\|(Nov 24 )?09:05 UTC>", card)
    # How long ago, in words as of sending (Slack documents no `<!date>` token for it).
    assert re.search(r"UTC> \((less than a minute|a minute|\d+ (minutes|hours|days)) ago\)", card)
    assert "{ago}" not in card
    assert "\ue000" not in str(edited.params), "no marker leaks to Slack"

    first = discord_emu.channel_messages(world.news)[0]
    (edit,) = [
        c for c in discord_emu.calls if c.method == "PATCH" and c.path.endswith(f"/messages/{first['id']}")
    ]
    assert f"<t:{update}:f> (<t:{update}:R>)" in str(edit.json)
    assert "\ue000" not in str(edit.json) and "09:05 UTC" not in str(edit.json)

    (history,) = await bot.staff_runs("/component history payments")
    assert "Nov 24 09:00 UTC: operational → partial_outage" in history.text, "plain UTC in the console"
