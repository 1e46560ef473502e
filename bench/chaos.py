"""Chaos benchmark: the bot in its own process (PostgreSQL, Slack and Discord) under steady mixed
traffic while faults are injected one after another, counting what people would see.

    python -m bench.chaos                  # about 3.5 minutes; needs TEST_DATABASE_URL (PostgreSQL)
    python -m bench.chaos --json --seconds 240
    python -m bench.chaos --processes 2    # two bot processes on the one database

Traffic, each action by a person of its own so its effects can be told apart: questions in a Slack
channel and on a Discord server, DMs, `/support help` on both, "That solved it" clicks on answers,
and on Slack a request for a person, the staff's Claim click and the staff's reply in the ticket's
thread; plus an incident broadcast to 60 Slack and 20 Discord channels.

Faults, in this order: five SIGKILLs of the bot at random moments (restarted at once by the
harness; the first lands in the broadcast), 429s with Retry-After, 5xx and timeouts from both
platforms' APIs, a PostgreSQL restart, Discord unreachable for 30 s (its sockets dropped, REST and
new connections answered 503; the gateway keeps the session so the bot can RESUME and get what it
missed replayed).

With `--processes 2`, two `supportbot run` processes share the PostgreSQL database, as two replicas
behind one Slack app and one Discord bot: Slack's requests go round robin to the live ones (a load
balancer whose health check has taken a dead one out; a retry may reach either), and the Discord
servers are split by shard (0 and 1 of 2, one help channel and half the status channels on each;
DMs come on shard 0, as on Discord). The SIGKILLs take the two in turn (the first the one sending
the Slack broadcast); a killed one is restarted at once and the other keeps serving. A kill's
recovery is until an action sent after it is answered, by either process.

The platforms redeliver as they do: Slack resends an event not acknowledged within 3 s with
`X-Slack-Retry-Num` 1..3, after about 1 s, 1 minute and 5 minutes; here that schedule is divided by
`SLACK_RETRY_SPEEDUP` (10: 0.1 s, 6 s, 30 s) so a run stays short. Slack never resends a slash
command or a click: one that reaches no bot is shown to the person as failed ("refused"). Discord
replays a dropped session's dispatches on RESUME; a new process starts a new session, and what was
dispatched to the dead one is never delivered (as on Discord); an interaction not answered within
3 s is shown as failed.

Figures: `inbound` (actions sent), `handled_once` (at least one effect, none twice), `lost` (no
visible effect at all), `apologised` (only the bot's "something went wrong" apology), `refused`
(a command or click the platform showed as failed: no bot acknowledged it within its 3 s, none being
up or the one that had it being killed first; Slack and Discord alike, the person sees it failed and
may try again; `refused_while_connected` counts the Discord ones a connected bot held when it
died), `duplicated` (an effect
a person saw twice: a post, a ticket, a broadcast notice), `slack_inflight_resends` (Slack
duplicates of a post in flight when the bot was killed or its call timed out: Slack has no
idempotency key), `max_recovery_s` (after each fault, until an action sent after it is answered),
and the same per fault. Load average is recorded: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.db import Database
from storage.models import Ticket
from tests.adapters.discord.harness import custom_id
from tests.bot_process import (
    BotProcess,
    both_platforms_env,
    fresh_postgres,
    guilds_one_per_shard,
    subscribe,
)
from tests.emulators.discord import DiscordEmulator
from tests.emulators.slack import SlackEmulator

SLACK_RETRY_SPEEDUP = 10.0
LEASE_S = 10
COMMUNITY, STAFF_CHANNEL, STAFF = "C0COMMUNITY", "C0STAFF", "U0STAFF"
SLACK_NEWS = [f"C0NEWS{i:02d}" for i in range(60)]
QUESTIONS = [
    "How do I reset my API key?",
    "Where can I download my invoices?",
    "How do I enable SSO?",
    "My CSV export failed",
    "Why did my webhook not fire?",
]
APOLOGY = "something went wrong on our side"


@dataclass
class Inbound:
    """One person's action and how to recognise its effects."""

    kind: str
    sent_at: float
    fault: str
    effects: Callable[[], list[tuple[str, float | None]]]  # (what a person sees, when if known)
    refused: bool = False
    refused_while_connected: bool = False
    ref: str = ""
    """What to look for in the bot's log (an interaction's id), named when the action is lost."""


@dataclass
class Fault:
    name: str
    started: float
    ended: float = 0.0
    recovery_s: float | None = None


@dataclass
class Run:
    slack: SlackEmulator
    discord: DiscordEmulator
    bots: list[BotProcess]
    database_url: str
    started: float = field(default_factory=time.monotonic)
    inbound: list[Inbound] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)
    killed: list[BotProcess] = field(default_factory=list)  # which process each SIGKILL took
    restarts_s: list[float] = field(default_factory=list)  # with two processes: kill to ready again
    slack_timeouts: list[float] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    people: int = 0
    slack_sent: int = 0  # requests so far, for the round robin over the processes
    discord_guilds: list[Any] = field(default_factory=list)  # one per shard
    discord_helps: list[Any] = field(default_factory=list)  # a help channel in each
    discord_news: list[Any] = field(default_factory=list)
    discord_seen: dict[str, float] = field(default_factory=dict)  # message id -> first seen
    postgres_restart_s: float = 0.0

    @property
    def fault_now(self) -> str:
        for fault in reversed(self.faults):
            if fault.ended == 0.0 or time.monotonic() < fault.ended + 5:
                return fault.name
        return "steady"

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def person(self) -> int:
        self.people += 1
        return self.people

    def url(self) -> str | None:
        """Where the next Slack request goes: round robin over the processes that are up."""
        live = [bot for bot in self.bots if bot.running and bot.port]
        if not live:
            return None
        self.slack_sent += 1
        return live[self.slack_sent % len(live)].slack_url

    def discord_side(self, n: int) -> tuple[Any, Any]:
        """The server (and its help channel) person `n` is on: the shards take turns."""
        side = n % len(self.discord_guilds)
        return self.discord_guilds[side], self.discord_helps[side]

    def discord_connected(self, guild: Any) -> bool:
        """A gateway session holding the guild's shard is up (an interaction has a bot to go to)."""
        shard = self.discord._shard_of(guild.id, len(self.discord_guilds))
        return any(
            s.identified.is_set() and not s.ws.closed and s.shard_id == shard for s in self.discord._sessions
        )


# -- effects -----------------------------------------------------------------------------------


def _slack_effects(run: Run, match: Callable[[Any], bool]) -> list[tuple[str, float | None]]:
    methods = ("chat.postMessage", "chat.postEphemeral", "response_url")
    return [
        (f"{c.method}|{c.params.get('channel')}|{c.params.get('thread_ts')}|{c.shown}", c.at)
        for c in run.slack.calls
        if c.method in methods and (c.ok or _posted_unanswered(run, c)) and match(c)
    ]


def _posted_unanswered(run: Run, call: Any) -> bool:
    """A post whose answer never came (a timeout) but which Slack made: people see it."""
    if call.method != "chat.postMessage" or call.error != "timeout":
        return False
    channel, text = str(call.params.get("channel")), call.params.get("text")
    with contextlib.suppress(KeyError):
        return any(m.get("text") == text and m.get("user") for m in run.slack.history(channel))
    return False


def _discord_effects(run: Run, match: Callable[[dict[str, Any]], bool]) -> list[tuple[str, float | None]]:
    bot_id = run.discord.bot.id
    found = []
    for message in list(run.discord.messages.values()):
        if message["author"]["id"] != bot_id or int(message.get("flags") or 0) & 128:
            continue  # not the bot's, or still "thinking…"
        if not (message.get("content") or message.get("embeds")):
            continue
        if match(message):
            shown = f"{message['channel_id']}|{message.get('content')}|{json.dumps(message.get('embeds'))}"
            found.append((shown, run.discord_seen.get(message["id"])))
    return found


# -- traffic -----------------------------------------------------------------------------------


async def slack_question(run: Run, text: str | None = None) -> tuple[str, str]:
    n = run.person()
    user = f"U0P{n:05d}"
    run.slack.add_user(user, f"person{n}")
    text = text or f"{random.choice(QUESTIONS)} (ref s{n})"
    event = run.slack.message_event(user, COMMUNITY, text)
    ts = str(event["ts"])
    run.inbound.append(
        Inbound(
            "slack.question",
            time.monotonic(),
            run.fault_now,
            # Its thread, or privately to the person (an apology, a "did you mean" is ephemeral).
            lambda: _slack_effects(
                run, lambda c: c.params.get("thread_ts") == ts or c.params.get("user") == user
            ),
        )
    )
    body = run.slack.event_callback(event)
    run.spawn(run.slack.deliver_with_retries(body, to=run.url, speedup=SLACK_RETRY_SPEEDUP))
    return user, ts


async def slack_dm(run: Run) -> None:
    n = run.person()
    user, channel = f"U0P{n:05d}", f"D0P{n:05d}"
    run.slack.add_user(user, f"person{n}")
    run.slack.add_channel(channel)
    event = run.slack.message_event(user, channel, f"{random.choice(QUESTIONS)} (ref dm{n})")
    run.inbound.append(
        Inbound(
            "slack.dm",
            time.monotonic(),
            run.fault_now,
            lambda: _slack_effects(run, lambda c: c.params.get("channel") == channel),
        )
    )
    body = run.slack.event_callback(event)
    run.spawn(run.slack.deliver_with_retries(body, to=run.url, speedup=SLACK_RETRY_SPEEDUP))


async def _slack_form(run: Run, item: Inbound, send: Callable[[], Awaitable[Any]]) -> None:
    """A command or a click: Slack does not retry them; no bot, or no ack in 3 s, is a visible failure."""
    run.inbound.append(item)
    url = run.url()
    if url is None:
        item.refused = True
        return

    async def to_url() -> Any:
        # Set where it goes in the step that sends it: other commands run at the same time.
        run.slack.bot_url = url
        return await send()

    try:
        ack = await asyncio.wait_for(to_url(), 3)
        item.refused = ack.status != 200
    except Exception:  # a refused connection, no answer within 3 s: Slack shows it failed
        item.refused = True


async def slack_command(run: Run) -> None:
    n = run.person()
    user, channel = f"U0P{n:05d}", f"D0P{n:05d}"
    run.slack.add_user(user, f"person{n}")
    run.slack.add_channel(channel)
    item = Inbound(
        "slack.command",
        time.monotonic(),
        run.fault_now,
        lambda: _slack_effects(run, lambda c: c.params.get("channel") == channel),
    )
    run.spawn(_slack_form(run, item, lambda: run.slack.slash_command(user, channel, "/support help")))


def _slack_post(run: Run, channel: str, thread_ts: str, has: str) -> Any:
    for call in reversed(run.slack.calls_to("chat.postMessage")):
        if (
            call.ok
            and call.params.get("channel") == channel
            and has in call.shown
            and thread_ts in ("", call.params.get("thread_ts"))
        ):
            return call
    return None


async def slack_click_solved(run: Run) -> None:
    user, ts = await slack_question(run)
    answer = None
    for _ in range(100):
        answer = next(
            (
                c
                for c in reversed(run.slack.calls_to("chat.postMessage"))
                if c.ok
                and c.params.get("thread_ts") == ts
                and any(b["action_id"].startswith("kb.solved") for b in c.buttons)
            ),
            None,
        )
        if answer is not None:
            break
        await asyncio.sleep(0.1)
    if answer is None:
        return  # the question's own figures tell what happened to it
    message = run.slack.message(COMMUNITY, str(answer.response["ts"]))
    action = answer.button("That solved it")
    item = Inbound(
        "slack.click",
        time.monotonic(),
        run.fault_now,
        lambda: _slack_effects(
            run,
            lambda c: "Glad" in c.shown and (c.params.get("user") == user or c.params.get("thread_ts") == ts),
        ),
    )
    await _slack_form(run, item, lambda: run.slack.click(user, COMMUNITY, message, action))


async def slack_ticket(run: Run) -> None:
    """A person asks for a person; staff claim the ticket and answer in its staff thread."""
    n = run.people + 1
    _user, ts = await slack_question(run, f"I want to talk to a human please, order {n}")
    card = None
    for _ in range(150):
        card = _slack_post(run, STAFF_CHANNEL, "", f"order {n}")
        if card is not None and card.buttons:
            break
        await asyncio.sleep(0.1)
    if card is None or not card.buttons:
        return
    message = run.slack.message(STAFF_CHANNEL, str(card.response["ts"]))
    number = re.search(r"Ticket #(\d+)", card.shown)
    held = f"You already hold ticket #{number.group(1) if number else '?'}."

    def claimed(call: Any) -> bool:
        """The customer told their ticket was picked up; or, when the team member's answer below got
        there first (an answer's writer takes the ticket, and the Claim click, slowed by the API
        faults, came after it), the clicker told they hold it already: each person heard."""
        if call.params.get("thread_ts") == ts and "picked up" in call.shown:
            return True
        return call.method != "chat.postMessage" and call.params.get("user") == STAFF and held in call.shown

    claim = Inbound(
        "slack.claim", time.monotonic(), run.fault_now, lambda: _slack_effects(run, claimed), ref=held
    )
    await _slack_form(
        run, claim, lambda: run.slack.click(STAFF, STAFF_CHANNEL, message, card.button("Claim"))
    )
    await asyncio.sleep(1)
    token = f"reply-{uuid.uuid4().hex[:8]}"
    event = run.slack.message_event(
        STAFF, STAFF_CHANNEL, f"We are on it ({token})", thread_ts=str(card.response["ts"])
    )
    run.inbound.append(
        Inbound(
            "slack.staff_reply",
            time.monotonic(),
            run.fault_now,
            lambda: _slack_effects(run, lambda c: c.params.get("thread_ts") == ts and token in c.shown),
        )
    )
    body = run.slack.event_callback(event)
    await run.slack.deliver_with_retries(body, to=run.url, speedup=SLACK_RETRY_SPEEDUP)


async def discord_question(run: Run) -> dict[str, Any]:
    emu = run.discord
    user = emu.add_user(f"person{run.person()}")
    guild, help_channel = run.discord_side(run.people)
    emu.add_member(guild, user)
    message = await emu.user_says(user, help_channel, f"{random.choice(QUESTIONS)} (ref d{run.people})")
    mid = message["id"]

    def in_thread_or_dm(m: dict[str, Any]) -> bool:
        # A thread on the question, or the person's DMs (a private reply outside an interaction).
        dm = next((c.id for c in emu.channels.values() if c.type == 1 and c.name == user.id), None)
        return m["channel_id"] in (mid, dm)

    run.inbound.append(
        Inbound(
            "discord.question",
            time.monotonic(),
            run.fault_now,
            lambda: _discord_effects(run, in_thread_or_dm),
        )
    )
    return message


async def discord_dm(run: Run) -> None:
    emu = run.discord
    user = emu.add_user(f"person{run.person()}")
    channel = emu.dm_channel(user)
    run.inbound.append(
        Inbound(
            "discord.dm",
            time.monotonic(),
            run.fault_now,
            lambda: _discord_effects(run, lambda m: m["channel_id"] == channel.id),
        )
    )
    await emu.user_says(user, channel, f"{random.choice(QUESTIONS)} (ref dd{run.people})")


def _interaction(
    run: Run, kind: str, guild: Any, payload_of: Callable[[], Awaitable[dict[str, Any]]]
) -> Inbound:
    ids: list[str] = []
    item = Inbound(
        kind,
        time.monotonic(),
        run.fault_now,
        lambda: _discord_effects(
            run, lambda m: bool(ids) and (m.get("interaction_metadata") or {}).get("id") == ids[0]
        ),
    )
    run.inbound.append(item)

    async def go() -> None:
        payload = await payload_of()
        ids.append(payload["id"])
        item.ref = f"interaction {payload['id']}"
        connected = run.discord_connected(guild)
        await asyncio.sleep(3.5)
        answered = any(
            c.path.startswith(f"/interactions/{payload['id']}/") and c.status < 300 for c in run.discord.calls
        )
        # Unacknowledged in 3 s, Discord shows it failed whoever had it, as Slack does (a command a
        # killed process took is `refused` there too): only an acknowledged one can be lost.
        item.refused = not answered
        item.refused_while_connected = not answered and connected

    run.spawn(go())
    return item


async def discord_command(run: Run) -> None:
    emu = run.discord
    user = emu.add_user(f"person{run.person()}")
    guild, help_channel = run.discord_side(run.people)
    emu.add_member(guild, user)
    _interaction(
        run, "discord.command", guild, lambda: emu.run_command(user, help_channel, "support", "help")
    )


async def discord_click_solved(run: Run) -> None:
    question = await discord_question(run)
    emu = run.discord
    answer = None
    for _ in range(100):
        answer = next(
            (
                m
                for m in list(emu.messages.values())
                if m["channel_id"] == question["id"] and m.get("components")
            ),
            None,
        )
        if answer is not None:
            break
        await asyncio.sleep(0.1)
    if answer is None:
        return
    user = emu.users[question["author"]["id"]]
    button = custom_id(answer, "That solved it")
    guild = emu.guilds[str(emu.channels[question["channel_id"]].guild_id)]
    _interaction(run, "discord.click", guild, lambda: emu.click(user, answer, button))


KINDS: list[tuple[Callable[[Run], Awaitable[Any]], float]] = [
    (slack_question, 3),
    (slack_dm, 1),
    (slack_command, 1),
    (slack_click_solved, 1),
    (slack_ticket, 0.6),
    (discord_question, 3),
    (discord_dm, 1),
    (discord_command, 1),
    (discord_click_solved, 1),
]


async def traffic(run: Run, until: float, rate: float) -> None:
    functions, weights = zip(*KINDS, strict=True)
    while time.monotonic() < until:
        kind = random.choices(functions, weights)[0]
        run.spawn(kind(run))
        await asyncio.sleep(random.expovariate(rate))


# -- faults ------------------------------------------------------------------------------------


async def probe_recovery(run: Run, fault: Fault) -> None:
    """Time from the fault's end until an action sent after it is answered, on each platform; the
    worse of the two. Both platforms are probed at once: one after the other, the second's time
    included the first's (a Slack probe that took 6 s made Discord's recovery 6 s longer)."""
    kinds = ((slack_question, "slack.question"), (discord_question, "discord.question"))
    answered = await asyncio.gather(*(_answered_after(run, fault, ask, kind) for ask, kind in kinds))
    fault.recovery_s = round(max(at - fault.ended for at in answered), 2)


async def _answered_after(run: Run, fault: Fault, ask: Callable[[Run], Awaitable[Any]], kind: str) -> float:
    """When a question of `kind` asked after the fault was first answered (a new one every 2 s)."""
    deadline = fault.ended + 60
    while time.monotonic() < deadline:
        await ask(run)
        item = next(i for i in reversed(run.inbound) if i.kind == kind)
        for _ in range(20):
            if item.effects():
                return time.monotonic()
            await asyncio.sleep(0.1)
    return deadline


async def kill_and_restart(run: Run, bot: BotProcess) -> None:
    fault = Fault("sigkill", time.monotonic())
    run.faults.append(fault)
    run.kills.append(time.monotonic())
    await bot.kill()
    fault.ended = fault.started  # the outage is the bot's own restart: recovery counts from the kill
    if len(run.bots) == 1:
        await bot.start(timeout=90)
        await probe_recovery(run, fault)
        return

    async def restart() -> None:
        await bot.start(timeout=90)
        run.restarts_s.append(round(time.monotonic() - fault.started, 2))

    # The other process serves while this one restarts: the probe starts at the kill.
    await asyncio.gather(restart(), probe_recovery(run, fault))


async def api_faults(run: Run) -> None:
    fault = Fault("api_errors", time.monotonic())
    run.faults.append(fault)
    slack, emu = run.slack, run.discord
    slack.fail_next("chat.postMessage", status=429, retry_after=1, times=3)
    slack.fail_next("chat.postMessage", status=500, times=3, after=2)
    slack.fail_next("chat.postMessage", timeout=True, applied=True, times=2, after=4)
    run.slack_timeouts.append(time.monotonic())
    emu.fail_next(status=429, method="POST", path="/channels/*/messages", retry_after=1.0, count=3)
    emu.fail_next(status=500, method="POST", path="/channels/*/messages", count=3)
    emu.stall_next(seconds=15, path="/channels/*/messages", count=2)
    await asyncio.sleep(15)
    fault.ended = time.monotonic()
    run.slack_timeouts.append(fault.ended)
    await probe_recovery(run, fault)


def _pg_ctl(action: str) -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]


async def _run(argv: list[str]) -> int:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


async def ensure_postgres_up() -> None:
    if await _run(_pg_ctl("status")) != 0:
        await _run(_pg_ctl("start"))


async def postgres_restart(run: Run) -> None:
    fault = Fault("postgres_restart", time.monotonic())
    run.faults.append(fault)
    try:
        await _run(_pg_ctl("restart"))
    finally:
        await ensure_postgres_up()
    fault.ended = time.monotonic()
    run.postgres_restart_s = round(fault.ended - fault.started, 1)
    await probe_recovery(run, fault)


async def discord_unreachable(run: Run, seconds: float) -> None:
    fault = Fault("discord_unreachable", time.monotonic())
    run.faults.append(fault)
    await run.discord.go_down()
    await asyncio.sleep(seconds)
    run.discord.come_back()
    fault.ended = time.monotonic()
    await probe_recovery(run, fault)


async def open_incident(run: Run) -> Inbound:
    item = Inbound(
        "slack.incident",
        time.monotonic(),
        run.fault_now,
        lambda: [(place, None) for place, n in notices(run).items() for _ in range(n)],
    )
    await _slack_form(
        run,
        item,
        lambda: run.slack.slash_command(STAFF, STAFF_CHANNEL, "/incident open api major API errors"),
    )
    return item


def notices(run: Run) -> Counter[str]:
    seen: Counter[str] = Counter()
    for channel in SLACK_NEWS:
        for message in run.slack.history(channel):
            if "API errors" in json.dumps(message):
                seen[f"slack:{channel}"] += 1
    for channel in run.discord_news:
        for message in run.discord.channel_messages(channel):
            if "API errors" in json.dumps(message.get("content")) + json.dumps(message.get("embeds")):
                seen[f"discord:{channel.id}"] += 1
    return seen


# -- the run -----------------------------------------------------------------------------------


def bot_env(
    url: str, slack: SlackEmulator, emu: DiscordEmulator, help_ids: list[str], *, shard: int, shards: int
) -> dict[str, str]:
    sharding = {"discord_shard_count": str(shards), "discord_shard_ids": str(shard)} if shards > 1 else {}
    return both_platforms_env(
        url,
        slack,
        emu,
        discord_community_channel_ids=",".join(help_ids),
        staff_channel=f"slack:{STAFF_CHANNEL}",
        staff_user_ids=f"slack:{STAFF}",
        broadcast_lease_seconds=str(LEASE_S),
        **sharding,
    )


def to_kill(run: Run) -> BotProcess:
    """The processes in turn; the first kill takes the one sending the Slack broadcast."""
    if not run.killed:
        lane = f"broadcast lane slack:{run.slack.team_id}: sending as"
        holder = next((b for b in run.bots if any(lane in line for line in b.log)), run.bots[0])
        run.killed.append(holder)
    else:
        run.killed.append(run.bots[(run.bots.index(run.killed[-1]) + 1) % len(run.bots)])
    return run.killed[-1]


async def subscribe_all(run: Run) -> set[str]:
    places = [("slack", run.slack.team_id, c) for c in SLACK_NEWS]
    places += [("discord", str(c.guild_id), c.id) for c in run.discord_news]
    subscribed = await subscribe(run.database_url, places, actor_key=f"slack:{STAFF}")
    return {f"{platform}:{channel}" for platform, channel in subscribed}


async def watch_discord(run: Run) -> None:
    """When each bot message first appeared (the emulator keeps no time)."""
    seen = run.discord_seen
    while True:
        now = time.monotonic()
        for message_id, message in list(run.discord.messages.items()):
            shown = message.get("content") or message.get("embeds")
            if message_id not in seen and shown and not int(message.get("flags") or 0) & 128:
                seen[message_id] = now
        await asyncio.sleep(0.1)


def tally(run: Run, items: list[Inbound]) -> dict[str, int]:
    counts = Counter[str]()
    for item in items:
        counts["inbound"] += 1
        if item.refused:
            counts["refused"] += 1
            counts["refused_while_connected"] += item.refused_while_connected
            continue
        effects = item.effects()
        shown = Counter(text for text, _ in effects)
        twice = [text for text, n in shown.items() if n > 1]
        if not effects:
            counts["lost"] += 1
        elif all(APOLOGY in text for text in shown):
            counts["apologised"] += 1
        elif twice:
            counts["duplicated"] += 1
            if item.kind.startswith("slack") and in_flight(run, effects):
                counts["slack_inflight_resends"] += 1
                counts["duplicated"] -= 1
        else:
            counts["handled_once"] += 1
    return {
        k: counts.get(k, 0)
        for k in (
            "inbound",
            "handled_once",
            "lost",
            "duplicated",
            "apologised",
            "refused",
            "refused_while_connected",
            "slack_inflight_resends",
        )
    }


def in_flight(run: Run, effects: list[tuple[str, float | None]]) -> bool:
    """The first copy was posted just before a kill, or while Slack's calls were timing out."""
    first = min((at for _, at in effects if at is not None), default=None)
    if first is None:
        return False
    windows = [(kill - 12, kill) for kill in run.kills]
    if len(run.slack_timeouts) == 2:
        windows.append((run.slack_timeouts[0], run.slack_timeouts[1] + 15))
    return any(start <= first <= end for start, end in windows)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def chaos(
    url: str, seconds: float, seed: int, *, processes: int = 1, bot_log: Path | None = None
) -> dict[str, Any]:
    random.seed(seed)
    target, drop = await fresh_postgres(url, prefix="chaos")
    loads = [load_average()]
    async with (
        SlackEmulator(channel_rate=20, burst=20, stall_seconds=15) as slack,
        DiscordEmulator(route_limit=50, global_limit=200) as emu,
    ):
        slack.add_user(STAFF, "sam", display_name="Sam")
        slack.add_channel(COMMUNITY, "community")
        slack.add_channel(STAFF_CHANNEL, "staff", private=True)
        for channel in SLACK_NEWS:
            slack.add_channel(channel, channel.lower())
        guilds = guilds_one_per_shard(emu, processes, "Acme")
        helps = [emu.add_channel(guild, "help") for guild in guilds]
        news = [emu.add_channel(guilds[i % processes], f"status-{i}") for i in range(20)]
        with tempfile.TemporaryDirectory() as tmp:
            help_ids = [channel.id for channel in helps]
            bots = [
                BotProcess(
                    "chaos" if processes == 1 else f"chaos{shard}",
                    bot_env(target, slack, emu, help_ids, shard=shard, shards=processes),
                    cwd=Path(tmp),
                )
                for shard in range(processes)
            ]
            run = Run(slack=slack, discord=emu, bots=bots, database_url=target)
            run.discord_guilds, run.discord_helps, run.discord_news = guilds, helps, news
            watcher = asyncio.create_task(watch_discord(run))
            try:
                await asyncio.gather(*(bot.start(timeout=90) for bot in bots))
                await emu.wait_connected(sessions=processes, timeout=30)
                subscribed = await subscribe_all(run)
                scale = seconds / 210
                at = run.started
                traffic_task = asyncio.create_task(traffic(run, at + seconds - 40 * scale, rate=3.0))

                async def wait_until(offset: float) -> None:
                    await asyncio.sleep(max(0.0, at + offset * scale - time.monotonic()))

                await wait_until(10)
                incident = await open_incident(run)
                await asyncio.sleep(2)  # the broadcast is under way: the first kill lands in it
                for index in range(5):
                    if index:
                        await wait_until(12 + 13 * index + random.uniform(0, 5))
                    await kill_and_restart(run, to_kill(run))
                loads.append(load_average())
                await wait_until(85)
                await api_faults(run)
                await wait_until(110)
                await postgres_restart(run)
                loads.append(load_average())
                await wait_until(125)
                await discord_unreachable(run, 30)
                loads.append(load_average())
                await traffic_task
                # Let Slack's last retries (0.1 + 6 + 30 s) and the broadcast finish.
                deadline = time.monotonic() + 45
                while run.tasks and time.monotonic() < deadline:  # noqa: ASYNC110 - tasks come and go
                    await asyncio.sleep(0.5)
                await asyncio.sleep(5)
                figures = report(run, incident, subscribed)
                figures["tickets_twice"] = await tickets_twice(target)
                figures["duplicated"] += figures["tickets_twice"]
                figures["discord_resumes"] = len(emu.resumes)
                figures["postgres_restart_s"] = run.postgres_restart_s
                figures["load_average"] = [*loads, load_average()]
                figures["seconds"] = round(time.monotonic() - run.started, 1)
                figures["processes"] = processes
                if processes > 1:
                    figures["killed"] = [bot.name for bot in run.killed]
                    figures["restarts_s"] = run.restarts_s
                return figures
            finally:
                watcher.cancel()
                for task in list(run.tasks):
                    task.cancel()
                await asyncio.gather(*(bot.stop() for bot in bots))
                if bot_log is not None:
                    await asyncio.to_thread(bot_log.write_text, _logs(bots))
                await ensure_postgres_up()
                await drop()


def _logs(bots: list[BotProcess]) -> str:
    if len(bots) == 1:
        return "".join(bots[0].log)
    return "".join(f"[{bot.name}] {line}" for bot in bots for line in bot.log)


async def tickets_twice(url: str) -> int:
    database = Database.from_url(url)
    async with database.session() as session:
        rows = await session.execute(
            select(Ticket.requester_key, func.count()).group_by(Ticket.requester_key).having(func.count() > 1)
        )
        twice = len(rows.all())
    await database.dispose()
    return twice


def report(run: Run, incident: Inbound, subscribed: set[str]) -> dict[str, Any]:
    figures: dict[str, Any] = tally(run, run.inbound)
    seen = notices(run)
    lost_notices = len(subscribed - set(seen))
    twice_notices = sum(1 for n in seen.values() if n > 1)
    figures["broadcast"] = {
        "channels": len(subscribed),
        "lost": lost_notices,
        "duplicated": twice_notices,
        "refused": incident.refused,
    }
    figures["lost"] += lost_notices
    figures["duplicated"] += twice_notices
    recoveries = [f.recovery_s for f in run.faults if f.recovery_s is not None]
    figures["max_recovery_s"] = max(recoveries, default=None)
    per_fault: dict[str, Any] = {}
    for name in ("steady", "sigkill", "api_errors", "postgres_restart", "discord_unreachable"):
        items = [i for i in run.inbound if i.fault == name]
        per_fault[name] = {
            **tally(run, items),
            "recovery_s": [f.recovery_s for f in run.faults if f.name == name],
        }
    figures["per_fault"] = per_fault
    figures["by_kind"] = {
        kind: tally(run, [i for i in run.inbound if i.kind == kind])
        for kind in sorted({i.kind for i in run.inbound})
    }
    # Claim clicks the clicker was told they hold already (their answer in the thread came first):
    # answered, but not by "picked up"; counted apart so a change in how often that happens shows.
    claims = [i for i in run.inbound if i.kind == "slack.claim" and not i.refused]
    figures["slack_claims_already_held"] = sum(
        1 for i in claims if (seen := i.effects()) and all(i.ref in shown for shown, _ in seen)
    )
    figures["lost_actions"] = [
        {"kind": i.kind, "at_s": round(i.sent_at - run.started, 1), "fault": i.fault, "ref": i.ref}
        for i in run.inbound
        if not i.refused and not i.effects()
    ]
    return figures


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=210,
        help="length of the run, 150-480 (start-up and the last retries add about a minute)",
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--processes", type=int, choices=(1, 2), default=1, help="bot processes on the one database"
    )
    parser.add_argument("--bot-log", type=Path, help="write the bot's log (every run of it) to this file")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("needs PostgreSQL: --database-url or TEST_DATABASE_URL")
    if not 150 <= args.seconds <= 480:
        parser.error(
            "--seconds must be between 150 and 480 (the faults need 150; a run stays under 10 minutes)"
        )
    try:
        figures = await chaos(
            args.database_url, args.seconds, args.seed, processes=args.processes, bot_log=args.bot_log
        )
    finally:
        await ensure_postgres_up()
    if figures["processes"] > 1:
        print(f"{figures['processes']} bot processes on one database")
    print(
        f"inbound {figures['inbound']}: handled once {figures['handled_once']}, lost {figures['lost']}, "
        f"duplicated {figures['duplicated']}, apologised {figures['apologised']}, "
        f"refused {figures['refused']}, slack in-flight resends {figures['slack_inflight_resends']}; "
        f"max recovery {figures['max_recovery_s']} s"
    )
    for name, counts in figures["per_fault"].items():
        print(f"  {name:20} {counts}")
    for kind, counts in figures["by_kind"].items():
        print(f"  {kind:20} {counts}")
    print(f"  broadcast {figures['broadcast']}; load average {figures['load_average']}")
    for lost in figures["lost_actions"]:
        print(f"  lost: {lost}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
