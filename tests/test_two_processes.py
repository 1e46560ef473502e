"""Two bot processes on one PostgreSQL, behind one Slack app and one Discord bot: Slack's requests
are spread over both (and each event also reaches the other one, as a retry behind a load balancer
would), Discord's guilds are split between them by shard. Everything a person sees happens once;
and when the process sending a broadcast is killed, the other one finishes it within its lease.

Real processes (`python -m bot run`), real slack-bolt and discord.py against the emulators."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import KBDecision, Ticket
from tests.adapters.slack.harness import COMMUNITY, STAFF, STAFF_CHANNEL, populate
from tests.bot_process import (
    BotProcess,
    both_platforms_env,
    guilds_one_per_shard,
    subscribe,
)
from tests.conftest import postgres_for_processes
from tests.emulators.discord import Channel, DiscordEmulator, Guild, User
from tests.emulators.slack import SlackEmulator

pytestmark = pytest.mark.postgres

LEASE_S = 2
SLACK_NEWS = [f"C0NEWS{i:02d}" for i in range(40)]
QUESTIONS = [
    "How do I reset my API key?",
    "Where can I download my invoices?",
    "How do I enable SSO?",
    "My CSV export failed",
    "I want to talk to a human please",
]


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with postgres_for_processes("t2p") as url:
        yield url


class Discord:
    """Two servers, one per shard, each with a help channel, a customer and status channels."""

    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu
        self.guilds: list[Guild] = guilds_one_per_shard(emu, 2, "Acme")
        self.help: list[Channel] = [emu.add_channel(g, "help") for g in self.guilds]
        self.news: list[Channel] = [emu.add_channel(g, f"status-{i}") for g in self.guilds for i in range(5)]
        # One person per question: a customer who asks again and again is offered a person.
        self.customers: list[User] = []
        for index in range(20):
            user = emu.add_user(f"customer-{index}")
            emu.add_member(self.guilds[index % 2], user)
            self.customers.append(user)


def _env(url: str, slack: SlackEmulator, discord: Discord, shard: int) -> dict[str, str]:
    return both_platforms_env(
        url,
        slack,
        discord.emu,
        slack_workspace_rate="8",
        discord_shard_count="2",
        discord_shard_ids=str(shard),
        discord_community_channel_ids=",".join(c.id for c in discord.help),
        staff_channel=f"slack:{STAFF_CHANNEL}",
        staff_user_ids=f"slack:{STAFF}",
        broadcast_lease_seconds=str(LEASE_S),
    )


async def _subscribe(url: str, slack: SlackEmulator, discord: Discord) -> set[tuple[str, str]]:
    places = [("slack", slack.team_id, channel) for channel in SLACK_NEWS]
    places += [("discord", channel.guild_id or "", channel.id) for channel in discord.news]
    return await subscribe(url, places, actor_key=f"slack:{STAFF}")


def _incident_posts(slack: SlackEmulator, discord: Discord) -> Counter[tuple[str, str]]:
    """The incident notices people can read, per subscribed channel (Slack history, Discord messages)."""
    seen: Counter[tuple[str, str]] = Counter()
    for channel in SLACK_NEWS:
        for message in slack.history(channel):
            if "API errors" in str(message.get("text", "")) + str(message.get("blocks", "")):
                seen["slack", channel] += 1
    for channel in discord.news:
        for message in discord.emu.channel_messages(channel):
            if "API errors" in str(message.get("content", "")) + str(message.get("embeds", "")):
                seen["discord", channel.id] += 1
    return seen


async def _until(condition: Any, timeout: float, what: str, detail: Any = None) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s" + (
            f": {detail()}" if detail else ""
        )
        await asyncio.sleep(0.05)


async def test_two_processes_share_the_work_once_and_one_finishes_the_broadcast_the_other_began(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        SlackEmulator(channel_rate=100, burst=100) as slack,
        DiscordEmulator(route_limit=100, global_limit=200) as emu,
    ):
        populate(slack)
        for channel in SLACK_NEWS:
            slack.add_channel(channel, channel.lower())
        discord = Discord(emu)
        bots = [
            BotProcess(f"bot{shard}", _env(database_url, slack, discord, shard), cwd=tmp_path)
            for shard in (0, 1)
        ]
        try:
            await asyncio.gather(*(bot.start() for bot in bots))
            await emu.wait_connected(sessions=2, timeout=10)
            assert sorted(tuple(i["shard"]) for i in emu.identifies) == [(0, 2), (1, 2)]

            # Slack: each question reaches one process, and a second copy of it reaches the other
            # one at the same moment (Slack's retry, balanced elsewhere).
            asked: list[str] = []
            for index in range(20):
                text = f"{QUESTIONS[index % len(QUESTIONS)]} (ref {index})"
                customer = slack.add_user(f"U0C{index:03d}", f"customer{index}")["id"]
                event = slack.message_event(customer, COMMUNITY, text)
                body = slack.event_callback(event)
                first, second = bots[index % 2], bots[1 - index % 2]
                acks = await asyncio.gather(
                    slack.send_event(body, to=first.slack_url),
                    slack.send_event(body, retry_num=1, to=second.slack_url),
                )
                assert [ack.status for ack in acks] == [200, 200]
                asked.append(event["ts"])
            # Discord: each server's messages reach only the process holding its shard.
            questions: list[dict[str, Any]] = []
            for index in range(20):
                side = index % 2
                text = f"{QUESTIONS[index % len(QUESTIONS)]} (ref d{index})"
                questions.append(await emu.user_says(discord.customers[index], discord.help[side], text))

            def answered_on_slack() -> set[str]:
                return {
                    str(call.params.get("thread_ts"))
                    for call in slack.calls_to("chat.postMessage")
                    if call.ok and call.params.get("channel") == COMMUNITY
                }

            def answered_on_discord() -> set[str]:
                # An answer goes in a thread on the question (same id); a request for a person gets a
                # private ticket thread instead.
                return {m["channel_id"] for m in emu.messages.values() if m["author"]["id"] == emu.bot.id}

            def ticket_rooms() -> int:
                return sum(1 for channel in emu.channels.values() if channel.type == 12)

            await _until(lambda: set(asked) <= answered_on_slack(), 30, "an answer to every Slack question")
            for_a_person = {q["id"] for q in questions if q["content"].startswith(QUESTIONS[-1])}
            await _until(
                lambda: (
                    {q["id"] for q in questions} - for_a_person <= answered_on_discord()
                    and ticket_rooms() >= len(for_a_person)
                ),
                30,
                "an answer to every Discord question",
                lambda: (
                    {q["content"] for q in questions if q["id"] not in answered_on_discord() | for_a_person},
                    ticket_rooms(),
                    [(c.method, c.path, c.status) for c in emu.calls if c.status >= 400][:10],
                ),
            )

            # The broadcast: one process takes each lane; the one pacing Slack's is killed mid-way.
            subscribed = await _subscribe(database_url, slack, discord)
            marks = [len(bot.log) for bot in bots]
            slack.bot_url = bots[0].slack_url
            ack = await slack.slash_command(STAFF, STAFF_CHANNEL, "/incident open api major API errors")
            assert ack.status == 200
            lane = f"broadcast lane slack:{slack.team_id}: sending as"
            holder = await _first_to_log(bots, lane, marks)
            await _until(lambda: sum(_incident_posts(slack, discord).values()) >= 12, 30, "a dozen notices")
            await holder.kill()
            killed_at = time.monotonic()
            assert len(_incident_posts(slack, discord)) < len(subscribed), "killed mid-broadcast"
            survivor = bots[1 - bots.index(holder)]
            await _until(
                lambda: set(_incident_posts(slack, discord)) >= subscribed,
                LEASE_S + 10,
                "the survivor finishing the broadcast",
            )
            finished_in = time.monotonic() - killed_at
            await survivor.wait_for_log(lane, since=marks[bots.index(survivor)], timeout=1)
            await asyncio.sleep(LEASE_S)  # a late duplicate would come within another lease
        finally:
            await asyncio.gather(*(bot.stop() for bot in bots))

    notices = _incident_posts(slack, discord)
    assert set(notices) == subscribed, "no subscribed channel was left without the notice"
    assert {place: n for place, n in notices.items() if n > 1} == {}, "nor got it twice"
    assert finished_in <= LEASE_S + 10

    # Nothing a person sees was done twice by the two processes.
    slack_replies = Counter(
        (c.params.get("channel"), c.params.get("thread_ts"), c.shown)
        for c in slack.calls_to("chat.postMessage")
        if c.ok and c.params.get("channel") in (COMMUNITY, STAFF_CHANNEL)
    )
    assert [reply for reply, n in slack_replies.items() if n > 1] == []
    discord_replies = Counter(
        (m["channel_id"], str(m.get("message_reference")), m["content"])
        for m in emu.messages.values()
        if m["author"]["id"] == emu.bot.id
    )
    assert [reply for reply, n in discord_replies.items() if n > 1] == []

    database = Database.from_url(database_url)
    async with database.session() as session:
        numbers = list((await session.execute(select(Ticket.number).order_by(Ticket.number))).scalars())
        decided = Counter((await session.execute(select(KBDecision.question))).scalars())
    await database.dispose()
    escalations = sum(1 for index in range(40) if index % len(QUESTIONS) == len(QUESTIONS) - 1)
    assert numbers == list(range(1, escalations + 1)), "one ticket per request for a person, numbered once"
    assert [question for question, n in decided.items() if n > 1] == [], "one decision per question"


async def _first_to_log(bots: list[BotProcess], text: str, marks: list[int]) -> BotProcess:
    """The process that logged `text` first (after each one's mark)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for bot, mark in zip(bots, marks, strict=True):
            if any(text in line for line in bot.log[mark:]):
                return bot
        await asyncio.sleep(0.02)
    raise AssertionError(f"no process logged {text!r}")
